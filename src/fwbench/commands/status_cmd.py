"""``fwbench status``: per stage, how far its runs are, why some failed, Slurm's states."""

from __future__ import annotations

import typer
from rich.console import Console

from fwbench.commands.options import MatrixOpt, OptPath, TrainConfigOpt, WorkspaceOpt
from fwbench.core.paths import Workspace
from fwbench.study.launch import notices
from fwbench.study.matrix import (
    UNSUCCESSFUL,
    VIEW_STATES,
    PlannedRun,
    count_states,
    error_line,
    load_configs,
    plan,
)

Opt = typer.Option


def status(
    stage: list[str] | None = Opt(None, "--stage", "-s", help="Stage(s) to show (repeatable)."),
    show_all: bool = Opt(False, "--all", help="Every stage of the matrix, also those not started."),
    matrix: OptPath = MatrixOpt,
    config: OptPath = TrainConfigOpt,
    workspace: OptPath = WorkspaceOpt,
) -> None:
    """Per stage: how many runs are done, running, failed, diverged or pending; why runs failed;
    each running run's epoch and val accuracy, each done run's test accuracy, Slurm states.

    Only stages that have runs are listed (``--all``: every stage). Runs started with
    ``run --set`` or ``fwbench train`` are counted under their stage (``+ other settings``) or
    under ``train``."""
    from fwbench.study.runindex import found_runs

    ws = Workspace.from_env(workspace)
    _, stages = load_configs(ws, config, matrix)
    out = Console(highlight=False, soft_wrap=True)
    header = f"{'stage':<14} {'runs':>5} " + " ".join(f"{s:>11}" for s in VIEW_STATES)
    out.print(header)
    on_disk = [f for f in found_runs(ws) if f.spec is not None]
    shown: dict[str, PlannedRun] = {}

    def row(name: str, runs: list[PlannedRun]) -> None:
        counts = count_states(runs)
        out.print(f"{name:<14} {len(runs):>5} " + " ".join(f"{counts[s]:>11}" for s in VIEW_STATES))

    for name in stage or list(stages.stages):
        runs = plan(ws, name, config=config, matrix=matrix)
        planned = {r.run_id for r in runs}
        other = [
            PlannedRun(f.spec, f.run_dir, f.label)
            for f in on_disk
            if f.spec.stage == name and f.run_id not in planned
        ]
        started = [r for r in runs if r.run_dir.status_path.exists()]
        if not (show_all or stage or started or other):
            continue
        row(name, runs)
        if other:
            row("+ other settings"[:14], other)
        for r in [*started, *other]:  # a run shared by stages keeps the label that has one
            if r.run_id not in shown or r.label:
                shown[r.run_id] = r
    outside: dict[str, list[PlannedRun]] = {}  # `fwbench train`, or a stage no longer defined
    for f in on_disk:
        if not f.spec.stage or f.spec.stage not in stages.stages:
            outside.setdefault(f.spec.stage or "train", []).append(
                PlannedRun(f.spec, f.run_dir, f.label)
            )
    for name, runs in sorted(outside.items()):
        if not stage or name in stage:
            row(name, runs)
            shown |= {r.run_id: r for r in runs}
    if not shown and not show_all and not stage:
        out.print(f"no runs yet in {ws.runs_dir} (--all lists every stage of the matrix)")
    _run_lines(out, list(shown.values()), (*UNSUCCESSFUL, "corrupt"))
    for line in notices(ws, []):
        out.print(line, soft_wrap=True)


def _run_lines(out: Console, runs: list[PlannedRun], unsuccessful: tuple[str, ...]) -> None:
    """One line per run that has started: state, Slurm state, progress or error."""
    from fwbench.record.view import progress_words, slurm_states

    statuses = {r.run_id: r.run_dir.read_status() for r in runs}
    queued = [s.get("slurm_job_id") for s in statuses.values() if s.get("state") != "done"]
    slurm = slurm_states([j for j in queued if j])
    for r in sorted(runs, key=lambda r: (r.state != "running", r.state, r.run_id)):
        state, job = r.state, statuses[r.run_id].get("slurm_job_id")
        where = f"  [slurm {job} {slurm[job]}]" if job in slurm else ""
        if state in unsuccessful:
            words = error_line(r.run_dir)
        else:
            words = progress_words(r.run_dir, state, r.spec.epochs)
            if state == "interrupted":  # what stopped it, and that `run` resumes it
                words = "; ".join(w for w in (words, error_line(r.run_dir)) if w)
        words = f": {words}" if words else ""
        out.print(f"{state} {r.name}{words}{where}", soft_wrap=True, markup=False)
