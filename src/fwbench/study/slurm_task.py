"""The command a Slurm array task runs, in a form submitit can requeue.

Kept to the standard library (and outside ``fwbench.study.executors``, whose package imports more)
on
purpose: the task unpickles it before submitit installs its signal handlers, so a heavy import
here would leave a window in which Slurm's time-limit warning (SIGUSR2) kills the task instead
of requeueing it.
"""

from __future__ import annotations

import subprocess
from typing import Any


class ResumableCommand:
    """A task's command that submitit may requeue: on a time-limit or preemption signal it stops
    the running command (SIGTERM) and hands back the same command, which resumes the run."""

    def __init__(self, command: list[str]):
        self.command = list(command)
        self._process: subprocess.Popen | None = None

    def __call__(self) -> None:
        self._process = subprocess.Popen(self.command)
        code = self._process.wait()
        if code != 0:
            raise RuntimeError(f"{' '.join(self.command[-6:])} exited with code {code}")

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        """Called by submitit before it requeues the task; returns what the requeued task runs."""
        from submitit.helpers import DelayedSubmission

        process = self._process
        if process is not None and process.poll() is None:
            process.terminate()  # the run keeps its last epoch's checkpoint; the next task resumes
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        return DelayedSubmission(ResumableCommand(self.command))

    def __getstate__(self) -> dict[str, Any]:
        return {"command": self.command, "_process": None}
