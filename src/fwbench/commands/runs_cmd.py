"""``fwbench runs ls|show|compare|export|clean`` (browse the run directories) and ``migrate``.

Every run directory under ``runs/`` is a run, however it was started: a stage, ``run --set``,
or ``fwbench train``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import typer
from rich.console import Console

from fwbench.commands.options import OptPath, WorkspaceOpt
from fwbench.core.errors import FwbenchError
from fwbench.core.paths import Workspace

app = typer.Typer(help="Browse runs: list, show, compare, export, clean.", no_args_is_help=True)
Opt = typer.Option
CLEANABLE = ("failed", "diverged", "corrupt")


def _out() -> Console:
    return Console(highlight=False, soft_wrap=True, markup=False)


@app.command("ls")
def ls(
    stage: list[str] | None = Opt(None, "--stage", "-s", help="Only these stages (repeatable)."),
    state: list[str] | None = Opt(None, "--state", help="Only runs in these states (repeatable)."),
    where: list[str] | None = Opt(
        None, "--where", help="Filter on any setting: model=resnet50, lr.base_lr=0.2 (repeatable)."
    ),
    as_json: bool = Opt(False, "--json", help="One JSON list instead of a table."),
    workspace: OptPath = WorkspaceOpt,
) -> None:
    """List every run directory: state, settings, epochs done, test accuracy."""
    from fwbench.study.runindex import found_runs, matches, parse_where
    from fwbench.study.runtext import table

    ws = Workspace.from_env(workspace)
    runs = found_runs(ws)
    filters = parse_where(where or [], [r.spec for r in runs if r.spec is not None])
    picked = []
    for r in runs:
        spec = r.spec
        if stage and (spec is None or (spec.stage or "train") not in stage):
            continue
        if filters and (spec is None or not matches(spec, filters)):
            continue
        current = r.state
        if state and current not in state:
            continue
        test = r.run_dir.test_metrics() or {}
        picked.append(
            {
                "run_id": r.run_id,
                "state": current,
                "stage": (spec.stage or "train") if spec else None,
                "settings": r.label,
                "epochs_done": len(r.run_dir.epochs()),
                "epochs": spec.epochs if spec else None,
                "test_accuracy": test.get("accuracy"),
                "run_dir": str(r.run_dir.path),
            }
        )
    out = _out()
    if as_json:
        out.print(json.dumps(picked, indent=1))
        return
    rows = [["state", "run", "stage", "settings", "epochs", "test acc"]]
    for p in picked:
        acc = p["test_accuracy"]
        rows.append(
            [
                p["state"], p["run_id"], p["stage"] or "-", p["settings"] or "-",
                f"{p['epochs_done']}/{p['epochs'] if p['epochs'] is not None else '?'}",
                f"{acc:.4f}" if isinstance(acc, int | float) else "-",
            ]
        )  # fmt: skip
    for line in table(rows):
        out.print(line)
    out.print(f"{len(picked)} of {len(runs)} runs in {ws.runs_dir}")


@app.command("show")
def show(
    run: str = typer.Argument(..., help="A run id, a unique part of one, or a run directory."),
    workspace: OptPath = WorkspaceOpt,
) -> None:
    """One run: spec, settings, epochs, test metrics and where its logs are."""
    from fwbench.study.runindex import resolve
    from fwbench.study.runtext import show as show_text

    out = _out()
    for line in show_text(resolve(Workspace.from_env(workspace), run)):
        out.print(line)


@app.command("compare")
def compare(
    run_a: str = typer.Argument(..., help="First run (id, unique part, or directory)."),
    run_b: str = typer.Argument(..., help="Second run."),
    workspace: OptPath = WorkspaceOpt,
) -> None:
    """Two runs: the settings that differ, test metrics and their difference, curves side by
    side."""
    from fwbench.study.runindex import resolve
    from fwbench.study.runtext import compare as compare_text

    ws = Workspace.from_env(workspace)
    out = _out()
    for line in compare_text(resolve(ws, run_a), resolve(ws, run_b)):
        out.print(line)


@app.command("export")
def export(
    out_dir: OptPath = Opt(None, "--out", "-o", help="Folder to write (default: results/)."),
    fmt: str = Opt("csv", "--format", help="csv or parquet."),
    stage: list[str] | None = Opt(
        None, "--stage", "-s", help="Exactly these stages' runs (repeatable); default: all runs."
    ),
    workspace: OptPath = WorkspaceOpt,
) -> None:
    """Write the runs table and the epochs table (runs.csv + epochs.csv, or .parquet)."""
    from fwbench.core.fileio import StagedWrites
    from fwbench.study.collect import collect_runs

    if fmt not in ("csv", "parquet"):
        raise FwbenchError(f"unknown --format '{fmt}'; known: csv, parquet", fix="pick one")
    ws = Workspace.from_env(workspace)
    runs, epochs = collect_runs(ws, stage or None)
    folder = Path(out_dir) if out_dir is not None else ws.results_dir
    paths = {name: folder / f"{name}.{fmt}" for name in ("runs", "epochs")}
    with StagedWrites() as staged:
        for name, frame in (("runs", runs), ("epochs", epochs)):
            if fmt == "csv":
                staged.add(paths[name], lambda p, f=frame: f.to_csv(p, index=False))
            else:
                staged.add(paths[name], lambda p, f=frame: f.to_parquet(p, index=False))
        staged.commit()
    out = _out()
    out.print(f"{len(runs)} runs -> {paths['runs']}")
    out.print(f"{len(epochs)} epochs -> {paths['epochs']}")


@app.command("clean")
def clean(
    state: list[str] | None = Opt(
        None, "--state", help="Which to delete: failed, diverged, corrupt (default: all three)."
    ),
    orphaned: bool = Opt(
        True, "--orphaned/--no-orphaned", help="Also folders in runs/ that hold no spec.json."
    ),
    dry_run: bool = Opt(False, "--dry-run", help="Only list what would be deleted."),
    workspace: OptPath = WorkspaceOpt,
) -> None:
    """Delete failed, diverged and corrupt run directories and orphaned folders. Done, running
    and interrupted (resumable) runs are never touched."""
    from fwbench.study.runindex import found_runs, orphans

    states = tuple(state or CLEANABLE)
    bad = sorted(set(states) - set(CLEANABLE))
    if bad:
        raise FwbenchError(
            f"`runs clean` does not delete {bad[0]} runs", fix=f"pick from {', '.join(CLEANABLE)}"
        )
    ws = Workspace.from_env(workspace)
    doomed = [(r.run_dir.path, r.state) for r in found_runs(ws) if r.state in states]
    if orphaned:
        doomed += [(p, "orphaned") for p in orphans(ws)]
    out = _out()
    verb = "would delete" if dry_run else "deleted"
    for path, why in doomed:
        if not dry_run:
            shutil.rmtree(path)
        out.print(f"{verb} {why:<9} {path}")
    out.print(f"{verb} {len(doomed)} run folder(s) in {ws.runs_dir}")


def migrate(
    dry_run: bool = typer.Option(False, "--dry-run", help="Only say what would be renamed."),
    workspace: OptPath = WorkspaceOpt,
) -> None:
    """Rename old-style run directories to their settings-hash ids so that stages reuse them."""
    from fwbench.record.migrate import migrate as run_migration

    ws = Workspace.from_env(workspace)
    out = Console(highlight=False, soft_wrap=True)
    moved = run_migration(ws, dry_run=dry_run)
    for old, what in moved:
        out.print(f"{old.path.name}: {what}")
    out.print(f"{len(moved)} old-style run directories in {ws.runs_dir}")
