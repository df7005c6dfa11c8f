"""The local executor: runs one after another, or N at a time, each in its own process.

Each run's stdout and stderr go to ``<run_dir>/train.log``. With GPUs, slot i gets its own
``CUDA_VISIBLE_DEVICES``. Ctrl-C (or SIGTERM) stops the running trainings and leaves them
``interrupted``; if the runner itself is killed, its children get SIGTERM (Linux parent-death
signal) and their pid dies with them. Either way the next ``fwbench run`` resumes those runs.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass
from typing import IO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from fwbench.core.errors import describe
from fwbench.core.interrupts import raise_stopped
from fwbench.record.lock import Busy, RunLock
from fwbench.record.view import EpochFeed, progress_words, short_names
from fwbench.study.executors.interface import (
    CommandFor,
    Executor,
    Outcome,
    mark_interrupted,
    mark_launched,
    outcome_line,
    outcome_of,
    record_failure,
    train_command,
)
from fwbench.study.matrix import PlannedRun, run_state
from fwbench.training.console import epoch_line

POLL_SECONDS = 0.2


def visible_gpus() -> list[str]:
    """GPU ids the slots can use: ``$CUDA_VISIBLE_DEVICES`` if set, else ``nvidia-smi -L``."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [g.strip() for g in env.split(",") if g.strip()]
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(
            ["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return [str(i) for i, line in enumerate(ln for ln in out.splitlines() if ln.startswith("GPU"))]


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: SIGTERM it when the runner dies (even by SIGKILL).
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class _Active:
    run: PlannedRun
    process: subprocess.Popen
    log: IO[str]
    started: float
    slot: int
    lock: RunLock
    feed: EpochFeed


class LocalExecutor(Executor):
    """Run each training as a child process, ``parallel`` at a time."""

    name = "local"

    def __init__(
        self,
        parallel: int = 1,
        *,
        command_for: CommandFor = train_command,
        gpus: list[str] | None = None,
        console: Console | None = None,
        grace_seconds: float = 30.0,
    ):
        self.parallel = parallel
        self.command_for = command_for
        self.gpus = visible_gpus() if gpus is None else gpus
        self.console = console or Console()
        self.grace_seconds = grace_seconds

    def run(self, runs: list[PlannedRun]) -> list[Outcome]:
        """Run every run in ``runs``; a failure is recorded and the rest go on. Each epoch a run
        finishes is printed as it lands in its ``epochs.jsonl``, behind the run's short name."""
        queue, active, outcomes = deque(runs), [], {}
        short = short_names([(r.spec, r.label) for r in runs])
        columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn())
        columns += (MofNCompleteColumn(), TimeElapsedColumn(), TextColumn("ETA"))
        progress = Progress(*columns, TimeRemainingColumn(), console=self.console)
        old_term = signal.signal(signal.SIGTERM, raise_stopped)
        try:
            with progress:
                task = progress.add_task("local", total=len(runs))
                while queue or active:
                    free = sorted(set(range(self.parallel)) - {a.slot for a in active})
                    while queue and free:
                        started = self._start(queue.popleft(), free[0])
                        if isinstance(started, Outcome):  # busy elsewhere, or not writable
                            outcomes[started.run_id] = started
                            line = outcome_line(started, "not started")
                            progress.console.print(line, highlight=False, soft_wrap=True)
                            progress.advance(task)
                            continue
                        free.pop(0)
                        active.append(started)
                    for a in active:
                        for record in a.feed.new():
                            line = f"[{short[a.run.run_id]}] {_epoch_text(a.run, record)}"
                            progress.console.print(line, highlight=False, markup=False)
                    for a in [a for a in active if a.process.poll() is not None]:
                        for record in a.feed.new():  # the last epoch, if written since
                            line = f"[{short[a.run.run_id]}] {_epoch_text(a.run, record)}"
                            progress.console.print(line, highlight=False, markup=False)
                        active.remove(a)
                        outcomes[a.run.run_id] = out = self._finish(a)
                        line = outcome_line(out, f"{out.seconds:.0f} s")
                        progress.console.print(line, highlight=False, soft_wrap=True)
                        progress.advance(task)
                    names = ", ".join(_running(a.run, short[a.run.run_id]) for a in active)
                    progress.update(task, description=f"local x{self.parallel}: {names}")
                    time.sleep(POLL_SECONDS)
        except KeyboardInterrupt:
            self._stop(active)
            raise
        finally:
            signal.signal(signal.SIGTERM, old_term)
        return [outcomes[r.run_id] for r in runs]

    def _start(self, run: PlannedRun, slot: int) -> _Active | Outcome:
        """Lock the run and launch its training; or say why it was not started."""
        try:
            lock = RunLock(run.run_dir.path).acquire()
        except Busy as busy:
            return Outcome(run.run_id, "busy", busy.holder, name=run.name)
        except OSError as e:
            return Outcome(run.run_id, "failed", f"cannot lock the run directory: {describe(e)}")
        state = run_state(run.run_dir)  # another runner may have finished it since we planned
        if state in ("done", "diverged"):
            lock.release()
            return Outcome(run.run_id, state, "finished meanwhile by another runner")
        try:
            return self._launch(run, slot, lock)
        except OSError as e:  # a read-only or full run directory: this run fails, others go on
            lock.release()
            error = f"cannot start: {describe(e)}"
            with contextlib.suppress(OSError):
                record_failure(run.run_dir, error)
            return Outcome(run.run_id, "failed", error)

    def _launch(self, run: PlannedRun, slot: int, lock: RunLock) -> _Active:
        env = dict(os.environ)
        if self.gpus:
            env["CUDA_VISIBLE_DEVICES"] = self.gpus[slot % len(self.gpus)]
        # No thread split between slots: the thread count changes a run's numbers, so it is the
        # run's setting (training.threads), never a consequence of --parallel.
        command = self.command_for(run.run_dir.path)
        run.run_dir.path.mkdir(parents=True, exist_ok=True)
        mark_launched(run.run_dir)
        log = open(run.run_dir.log_path, "a", encoding="utf-8")  # noqa: SIM115 (closed in _finish)
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        gpu = f" CUDA_VISIBLE_DEVICES={env['CUDA_VISIBLE_DEVICES']}" if self.gpus else ""
        log.write(f"=== fwbench run (local, {socket.gethostname()}, {stamp}){gpu}: ")
        log.write(" ".join(command) + "\n")
        log.flush()
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,  # Ctrl-C reaches the runner, which stops children in order
            preexec_fn=_die_with_parent,
            pass_fds=(lock.hand_over(env),),  # the child holds the run's lock too
        )
        return _Active(run, process, log, time.monotonic(), slot, lock, EpochFeed(run.run_dir))

    def _finish(self, a: _Active) -> Outcome:
        a.log.close()
        rc = a.process.returncode
        state = run_state(a.run.run_dir)
        try:
            if rc < 0:
                record_failure(a.run.run_dir, f"killed by {signal.Signals(-rc).name}")
            elif rc > 0:
                record_failure(a.run.run_dir, f"train exited with code {rc}")
            elif state not in ("done", "diverged"):
                record_failure(a.run.run_dir, f"train exited 0 but left the run '{state}'")
        except OSError as e:  # the run directory cannot be written: say so, go on
            return Outcome(a.run.run_id, "failed", f"cannot record the outcome: {describe(e)}")
        finally:
            a.lock.release()
        return outcome_of(a.run, time.monotonic() - a.started)

    def _stop(self, active: list[_Active]) -> None:
        """Interrupt running trainings (SIGINT, then SIGKILL after the grace period)."""
        for a in active:
            _signal_group(a.process, signal.SIGINT)
        deadline = time.monotonic() + self.grace_seconds
        for a in active:
            try:
                a.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                _signal_group(a.process, signal.SIGKILL)
                a.process.wait()
            a.log.close()
            with contextlib.suppress(OSError):
                mark_interrupted(a.run.run_dir)
            a.lock.release()
        if active:
            self.console.print(
                f"interrupted: {len(active)} run(s) stopped; `fwbench run` again resumes them"
            )


def _epoch_text(run: PlannedRun, record: dict) -> str:
    """The run's epoch line as its own console shows it, or the raw fields if incomplete."""
    left = run.spec.epochs - int(record.get("epoch", 0))
    try:
        return epoch_line(run.spec, record, left * float(record["epoch_time_seconds"]))
    except (KeyError, TypeError, ValueError):
        return f"epoch {record.get('epoch')}/{run.spec.epochs}"


def _running(run: PlannedRun, short: str) -> str:
    """``s1-pytorch (epoch 3/10, val acc 0.6123)`` for the live line (short: it holds several)."""
    words = progress_words(run.run_dir, "running", run.spec.epochs)
    return f"{short} ({words})" if words else short


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)
