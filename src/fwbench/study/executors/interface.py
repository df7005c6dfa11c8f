"""What every executor shares: the command it launches and how a run's outcome is recorded.

An executor starts one ``fwbench train --run-dir DIR`` process per run and never imports a
framework. Whatever happened is read back from the run directory; when the process died without
writing its final state, the executor writes ``failed`` (with the reason and the tail of
``train.log``) so that ``fwbench status`` and ``--retry-failed`` see it.
"""

from __future__ import annotations

import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fwbench.core.fileio import write_json
from fwbench.record.runs import RunDir
from fwbench.study.matrix import PlannedRun, error_line, run_state

CommandFor = Callable[[Path], list[str]]
LOG_TAIL_LINES = 20


def train_command(run_dir: Path, workspace: Path | None = None) -> list[str]:
    """``fwbench train --run-dir DIR [--workspace WS]`` run by this interpreter.

    The workspace is passed explicitly: a child (or a Slurm node) must not depend on the runner's
    current directory. Compute nodes share the venv, so ``sys.executable`` is valid there.
    """
    command = [sys.executable, "-m", "fwbench.cli", "train", "--run-dir", str(run_dir)]
    return command if workspace is None else [*command, "--workspace", str(workspace)]


@dataclass(frozen=True)
class Outcome:
    """How one launched run ended: its state read from the run directory, and why if not done."""

    run_id: str
    state: str
    error: str = ""
    seconds: float = 0.0
    name: str = ""  # the id with its settings label (PlannedRun.name), for the console
    result: str = ""  # a done run's "test acc 0.9312"

    @property
    def ok(self) -> bool:
        return self.state in ("done", "diverged", "busy")


class Executor(ABC):
    """Launch runs and wait for them; the whole interface is ``run``."""

    name: str = "executor"

    @abstractmethod
    def run(self, runs: list[PlannedRun]) -> list[Outcome]:
        """Run each of ``runs`` to completion (or failure) and return their outcomes in order."""


def record_failure(run_dir: RunDir, reason: str) -> None:
    """Mark a run ``failed`` unless it already reached a final state itself.

    ``error`` gets ``reason`` plus the last line of ``train.log``; ``log_tail`` the last lines.
    An error the run wrote itself is kept, only the log tail is added.
    """
    status = run_dir.read_status()
    tail = run_dir.log_tail(LOG_TAIL_LINES)
    if status.get("state") in ("done", "diverged", "interrupted"):
        return
    if status.get("state") == "failed" and status.get("error"):
        run_dir.set_status("failed", log_tail=tail)
        return
    last = next((ln.strip() for ln in reversed(tail.splitlines()) if ln.strip()), "")
    error = f"{reason}: {last}" if last else reason
    run_dir.set_status("failed", error=error, log_tail=tail)


def mark_interrupted(run_dir: RunDir) -> None:
    """Leave a run its runner stopped in a state the next ``fwbench run`` resumes.

    The run stays ``running`` without a live pid, which ``run_state`` reads as ``interrupted``;
    a ``failed`` the run wrote because it was interrupted is turned back into that too.
    """
    status = run_dir.read_status()
    if status.get("state") in ("done", "diverged") or not run_dir.status_path.exists():
        return
    status.update(state="running", pid=None, interrupted_at=time.time(), updated_at=time.time())
    status.pop("error", None)
    status.pop("finished_at", None)
    write_json(run_dir.status_path, status)


def mark_launched(run_dir: RunDir, **fields: object) -> None:
    """Reset a run about to be (re)launched to ``pending``, dropping a previous attempt's error."""
    status = run_dir.read_status()
    if status.get("state") in ("done", "diverged") and not fields:
        return
    for key in (
        "error",
        "traceback",
        "log_tail",
        "finished_at",
        "pid",
        "interrupted_at",
        "stopped_by",
    ):
        status.pop(key, None)
    status.update(state="pending", updated_at=time.time(), **fields)
    write_json(run_dir.status_path, status)


def outcome_line(out: Outcome, where: str) -> str:
    """One rich-markup line for a finished run: state, id, where it ran, and the error line."""
    from rich.markup import escape

    mark = {
        "done": "[green]done[/]",
        "diverged": "[yellow]diverged[/]",
        "busy": "[yellow]busy[/]",
        "interrupted": "[yellow]interrupted[/]",
    }
    result = f"  {out.result}" if out.result else ""
    text = f"{mark.get(out.state, '[red]FAILED[/]')} {escape(out.name or out.run_id)}{result}"
    text += f" ({where})"
    return f"{text}: {escape(out.error)}" if out.error else text


def outcome_of(run: PlannedRun, seconds: float = 0.0) -> Outcome:
    """The outcome of ``run`` as its run directory tells it."""
    from fwbench.record.view import progress_words

    state = run_state(run.run_dir)
    error = error_line(run.run_dir) if state in ("failed", "diverged", "interrupted") else ""
    result = progress_words(run.run_dir, state, run.spec.epochs) if state == "done" else ""
    return Outcome(run.run_id, state, error, seconds, run.name, result)
