"""One trainer per run: an exclusive lock on ``<run_dir>/.lock`` (``fcntl.flock``).

The lock is taken by whoever starts a run — a runner (``fwbench run``) before it launches the
training process, or ``fwbench train`` itself — and is held until that process ends; the kernel
drops it when the process dies, however it dies. The lock file says who holds it (host, pid,
command, since when), so a second runner skips the run and says why.

The local runner hands its lock to the training process it launches: the open lock file is
inherited (``FWBENCH_RUN_LOCK_FD``), so the child holds the same lock and goes on holding it if
the runner is killed. On Slurm the task's ``fwbench train`` takes the lock on the compute node
(the run directory is on a shared file system); the runner skips runs whose lock is held.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path

from fwbench.core.errors import FwbenchError

LOCK_NAME = ".lock"
FD_ENV = "FWBENCH_RUN_LOCK_FD"


class Busy(FwbenchError):
    """The run is being trained by another process."""

    def __init__(self, path: Path, holder: str):
        self.holder = holder
        super().__init__(
            f"run is busy: {holder}",
            path=path,
            fix="wait for that process to finish (or stop it); this run is skipped",
        )


def describe_holder(lock_path: Path) -> str:
    """Who holds the lock, in words, from what the holder wrote into the lock file."""
    try:
        info = json.loads(lock_path.read_text(encoding="utf-8"))
        since = time.strftime("%H:%M:%S", time.localtime(info["since"]))
        return f"trained by pid {info['pid']} on {info['host']} since {since} ({info['command']})"
    except (OSError, ValueError, KeyError, TypeError):
        return "locked by another process"


class RunLock:
    """The exclusive lock of one run directory (``with RunLock(path): ...``)."""

    def __init__(self, run_dir: str | Path):
        self.path = Path(run_dir) / LOCK_NAME
        self.fd: int | None = None

    def acquire(self) -> RunLock:
        """Take the lock now or raise :class:`Busy` naming the holder."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise Busy(self.path.parent, describe_holder(self.path)) from None
        self.fd = fd
        self._write_holder()
        return self

    def _write_holder(self) -> None:
        assert self.fd is not None
        info = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "since": time.time(),
            "command": " ".join(os.path.basename(a) for a in sys.argv[:3]) or "python",
        }
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, (json.dumps(info) + "\n").encode(), 0)

    def hand_over(self, env: dict[str, str]) -> int:
        """Let a child process inherit this lock: set ``env`` and return the fd to pass."""
        assert self.fd is not None
        os.set_inheritable(self.fd, True)
        env[FD_ENV] = str(self.fd)
        return self.fd

    def release(self) -> None:
        """Drop the lock (a child that inherited it keeps holding it until it exits)."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def is_held(run_dir: str | Path) -> bool:
    """Whether another open lock holds the run now (a trainer somewhere is working on it)."""
    try:
        RunLock(run_dir).acquire().release()
    except Busy:
        return True
    except OSError:
        return False
    return False


def lock_for_training(run_dir: str | Path) -> RunLock:
    """The lock ``fwbench train`` holds while it trains (raises :class:`Busy` if another has it).

    A lock inherited from the runner (``FWBENCH_RUN_LOCK_FD``) is adopted and its holder record
    updated to this process.
    """
    path = Path(run_dir).resolve()
    inherited = os.environ.pop(FD_ENV, None)
    if inherited is not None:
        lock = RunLock(path)
        try:
            fd = int(inherited)
            if os.path.samestat(os.fstat(fd), os.stat(lock.path)):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # already ours: a no-op
                lock.fd = fd
                lock._write_holder()
                return lock
        except (ValueError, OSError):
            pass
    return RunLock(path).acquire()
