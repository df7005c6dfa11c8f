"""Guards around a run directory while a run trains in it: room for its final state when the disk
fills, and no second trainer on a run another live process on this host is training."""

from __future__ import annotations

import os
from pathlib import Path

from fwbench.core.errors import FwbenchError
from fwbench.record.runs import RunDir

RESERVE_NAME = ".reserve"
_RESERVE_BYTES = 256 * 1024


def reserve_space(run_dir: RunDir) -> Path | None:
    """A small file of zeros in the run directory, deleted to make room for the run's final
    state (``failed``/``interrupted``, its log line) when the disk fills up during training."""
    path = run_dir.path / RESERVE_NAME
    try:
        with open(path, "wb") as f:
            f.write(b"\0" * _RESERVE_BYTES)
            f.flush()
            os.fsync(f.fileno())
    except OSError:
        path.unlink(missing_ok=True)
        return None
    return path


def free_reserve(reserve: Path | None) -> None:
    """Delete the file ``reserve_space`` made (None, or already gone: nothing to do)."""
    if reserve is not None:
        reserve.unlink(missing_ok=True)


def refuse_if_live(run_dir: RunDir) -> None:
    """A user error if ``status.json`` says ``running`` by a process alive on this host.

    A ``running`` state whose process is gone (or on another host) is a resume, not refused.
    """
    status = run_dir.read_status()
    pid = status.get("pid")
    if status.get("state") != "running" or not pid or pid == os.getpid():
        return
    if status.get("host") != os.uname().nodename:
        return
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, PermissionError, ValueError):
        return  # the process that wrote "running" is gone: this is a resume
    raise FwbenchError(
        f"run is being trained by process {pid} on this host",
        path=run_dir.path,
        fix="wait for it to finish, or stop that process first",
    )
