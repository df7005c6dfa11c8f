"""The Slurm executor: one submitit job array per submission, one array task per run.

Each task runs the same ``fwbench train --run-dir DIR`` command as the local executor (through
``ResumableCommand``, which submitit can requeue), its output appended to
``<run_dir>/train.log``. Job states are polled (one ``sacct`` call per poll for the whole array)
and shown; what a run achieved is
read from its run directory. A task that ended without its run writing a final state (killed,
cancelled, timed out, out of memory) is recorded ``failed`` with the Slurm state as the reason.

The task runs ``sys.executable -m submitit.core._submit``: the venv and the workspace must be at
the same path on the compute nodes (a shared file system, as on any Slurm cluster).
"""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from fwbench.config.executor import SlurmExecutorConfig
from fwbench.core.errors import FwbenchError
from fwbench.record.lock import LOCK_NAME, describe_holder, is_held
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
from fwbench.study.slurm_task import ResumableCommand

# Appends the task's output to train.log (argv: log path, then the command).
_LOGGED = (
    'echo "=== fwbench run (slurm job ${SLURM_ARRAY_JOB_ID:-$SLURM_JOB_ID}'
    '_${SLURM_ARRAY_TASK_ID:-0}, $(hostname), $(date "+%F %T"))" >>"$0"; exec "$@" >>"$0" 2>&1'
)


def slurm_parameters(config: SlurmExecutorConfig, name: str = "fwbench") -> dict[str, Any]:
    """submitit ``update_parameters`` keywords for ``config`` (unset options are left out)."""
    params: dict[str, Any] = {
        "name": name,
        "timeout_min": config.time_min,
        "mem_gb": config.mem_gb,
        "cpus_per_task": config.cpus,
        "slurm_array_parallelism": config.array_parallelism,
        "slurm_signal_delay_s": config.signal_seconds,
    }
    if config.gpus:
        params["gpus_per_node"] = config.gpus
    if config.partition:
        params["slurm_partition"] = config.partition
    if config.account:
        params["slurm_account"] = config.account
    if config.sbatch:
        params["slurm_additional_parameters"] = dict(config.sbatch)
    return params


def active_job_ids() -> set[str]:
    """Ids (``123`` or ``123_4``) of this cluster's pending and running jobs, arrays expanded."""
    try:
        out = subprocess.run(
            ["squeue", "-h", "-r", "-o", "%i"],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        ).stdout
    except (OSError, subprocess.SubprocessError) as e:
        raise FwbenchError(
            f"cannot reach Slurm (squeue failed: {e})",
            fix="run on a Slurm login node, or start one with `bash scripts/slurm-local.sh up`",
        ) from None
    return {line.strip() for line in out.splitlines() if line.strip()}


class SlurmExecutor(Executor):
    """Submit runs as one Slurm job array and follow them to the end."""

    name = "slurm"

    def __init__(
        self,
        config: SlurmExecutorConfig,
        folder: str | Path,
        *,
        command_for: CommandFor = train_command,
        console: Console | None = None,
        detach: bool = False,
    ):
        self.config = config
        self.folder = Path(folder)
        self.command_for = command_for
        self.console = console or Console()
        self.detach = detach

    def run(self, runs: list[PlannedRun]) -> list[Outcome]:
        """Submit ``runs`` (except those already queued on Slurm) and wait for every task;
        detached: submit, say how to follow, and return no outcomes."""
        queued = active_job_ids()
        launch = [r for r in runs if r.run_dir.read_status().get("slurm_job_id") not in queued]
        busy = [r for r in launch if is_held(r.run_dir.path)]  # trained by another runner now
        for r in busy:
            holder = describe_holder(r.run_dir.path / LOCK_NAME)
            self.console.print(f"busy {r.run_id}: {holder}; skipped", soft_wrap=True)
        launch = [r for r in launch if r not in busy]
        for r in runs:
            if r not in launch:
                job_id = r.run_dir.read_status()["slurm_job_id"]
                self.console.print(f"already queued: {r.run_id} (slurm job {job_id})")
        if not launch:
            return []
        jobs = self._submit(launch)
        if self.detach:
            self._how_to_follow(jobs, launch)
            return []
        try:
            self._follow(jobs, launch)
        except KeyboardInterrupt:
            self._cancel(jobs, launch)
            raise
        return [outcome_of(r) for r in launch]

    def _submit(self, runs: list[PlannedRun]) -> list[Any]:
        import submitit

        self.folder.mkdir(parents=True, exist_ok=True)
        executor = submitit.AutoExecutor(
            folder=self.folder / "%j",
            cluster="slurm",
            slurm_max_num_timeout=self.config.max_requeues,
        )
        executor.update_parameters(**slurm_parameters(self.config))
        for r in runs:
            mark_launched(r.run_dir)  # a failed run's old error must not outlive the retry
        with executor.batch():
            jobs = [executor.submit(ResumableCommand(self._command(r))) for r in runs]
        for r, job in zip(runs, jobs, strict=True):
            mark_launched(r.run_dir, slurm_job_id=job.job_id)
        array_id = jobs[0].job_id.split("_")[0]
        self.console.print(
            f"submitted {len(jobs)} run(s) as Slurm job array {array_id} "
            f"(at most {self.config.array_parallelism} at once; logs {self.folder / array_id}_*)"
        )
        return jobs

    def _how_to_follow(self, jobs: list[Any], runs: list[PlannedRun]) -> None:
        array_id = jobs[0].job_id.split("_")[0]
        for job, r in zip(jobs, runs, strict=True):
            self.console.print(f"  {job.job_id}  {r.run_id}", highlight=False, soft_wrap=True)
        self.console.print(
            f"detached. Follow with: fwbench status   |   squeue -j {array_id}   |   "
            f"tail -f {runs[0].run_dir.log_path}",
            highlight=False,
            soft_wrap=True,
        )

    def _command(self, run: PlannedRun) -> list[str]:
        log = str(run.run_dir.log_path)
        return ["/bin/sh", "-c", _LOGGED, log, *self.command_for(run.run_dir.path)]

    def _follow(self, jobs: list[Any], runs: list[PlannedRun]) -> None:
        waiting = dict(zip((j.job_id for j in jobs), zip(jobs, runs, strict=True), strict=True))
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
        with Progress(*columns, TimeElapsedColumn(), console=self.console) as progress:
            task = progress.add_task("slurm", total=len(jobs))
            delay = min(2.0, self.config.poll_seconds)
            while waiting:
                time.sleep(delay)
                delay = self.config.poll_seconds
                jobs[0].get_info(mode="force")  # one sacct call refreshes every job of the array
                for job_id, (job, run) in list(waiting.items()):
                    if job.done():
                        del waiting[job_id]
                        out = self._finish(job, run)
                        line = outcome_line(out, f"slurm job {job_id}")
                        progress.console.print(line, highlight=False, soft_wrap=True)
                        progress.advance(task)
                states = Counter(job.state.split()[0] for job, _ in waiting.values())
                text = ", ".join(f"{n} {s}" for s, n in sorted(states.items()))
                progress.update(task, description=f"slurm: {text or 'finishing'}")

    def _finish(self, job: Any, run: PlannedRun) -> Outcome:
        state = run_state(run.run_dir)
        # a task that found the run busy (another trainer holds its lock) changed nothing
        if state in ("done", "diverged") or is_held(run.run_dir.path):
            return outcome_of(run)
        ended = f"slurm job {job.job_id} ended {_final_state(job)}"
        if run.run_dir.read_status().get("state") == "interrupted":
            # the run caught the signal (scancel's SIGTERM) and wrote its own resumable state at
            # a checkpoint: not a failure; the Slurm state says what stopped it. A task killed
            # without that (OOM, node failure) left `running` and fails below.
            run.run_dir.set_status("interrupted", stopped_by=ended)
        else:
            record_failure(run.run_dir, ended)
        return outcome_of(run)

    def _cancel(self, jobs: list[Any], runs: list[PlannedRun]) -> None:
        """Ctrl-C: cancel the array, then leave unfinished runs resumable."""
        array_ids = sorted({j.job_id.split("_")[0] for j in jobs})
        subprocess.call(["scancel", *array_ids])
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not all(j.done(force_check=True) for j in jobs):
            time.sleep(1)
        for r in runs:
            if run_state(r.run_dir) not in ("done", "diverged", "failed"):
                mark_interrupted(r.run_dir)
        self.console.print(f"interrupted: cancelled job array {', '.join(array_ids)}")


# States submitit counts as not ended (``core.Watcher.is_done``).
_NOT_ENDED = ("READY", "PENDING", "RUNNING", "UNKNOWN", "REQUEUED", "COMPLETING", "PREEMPTED")


def _final_state(job: Any, tries: int = 10, pause: float = 1.0) -> str:
    """The job's end state. submitit calls a task done once its result file exists, which can
    be before Slurm's accounting has the end (a cancelled task read PENDING or UNKNOWN for a
    moment), so a state that is not an end is asked again a few times before it is reported."""
    state = job.state
    for _ in range(tries):
        if _ended(state):
            break
        time.sleep(pause)
        state = job.get_info(mode="force").get("State", job.state)
    return state


def _ended(state: str) -> bool:
    words = state.split()
    return bool(words) and words[0].upper() not in _NOT_ENDED
