"""``fwbench collect``, ``analyze`` and ``report``: run directories to tables, statistics, report.

None of these imports a framework: they read files and use pandas, scipy and matplotlib only.
"""

from __future__ import annotations

import typer
from rich.console import Console

from fwbench.commands.options import MatrixOpt, OptPath, WorkspaceOpt
from fwbench.paths import Workspace

StageOpt = typer.Option(
    None,
    "--stage",
    "-s",
    help="Collect this matrix stage's expected runs (repeatable); default: every run directory.",
)


def collect(
    stage: list[str] | None = StageOpt,
    matrix: OptPath = MatrixOpt,
    workspace: OptPath = WorkspaceOpt,
) -> None:
    """Summarise run directories into results/runs.csv, runs.parquet and epochs.parquet."""
    from fwbench.results import collect_runs, write_results

    ws = Workspace.from_env(workspace)
    runs, epochs = collect_runs(ws, stage or None, matrix)
    paths = write_results(ws, runs, epochs)
    counts = runs["state"].value_counts().to_dict()
    states = ", ".join(f"{v} {k}" for k, v in counts.items()) or "no runs"
    out = Console(highlight=False)
    out.print(f"{len(runs)} runs ({states}), {len(epochs)} epoch records")
    out.print(f"wrote {', '.join(str(p) for p in paths)}")


def analyze(workspace: OptPath = WorkspaceOpt) -> None:
    """Statistics across seeds from results/ -> analysis/*.csv, *.md, *.tex."""
    from fwbench.analysis.stats import analyze as run_analysis
    from fwbench.analysis.tables import write_analysis
    from fwbench.results import load_results

    ws = Workspace.from_env(workspace)
    runs, _ = load_results(ws)
    analysis = run_analysis(runs)
    paths = write_analysis(ws, analysis)
    out = Console(highlight=False)
    acc = analysis.comparison
    if not acc.empty:
        for row in acc[acc["metric"] == "test_accuracy"].to_dict("records"):
            cell = "/".join(str(row[k]) for k in ("dataset", "model", "precision", "variant"))
            out.print(f"{cell}: {row['conclusion']}")
    out.print(f"wrote {len(paths)} tables to {ws.analysis_dir}")


def report(workspace: OptPath = WorkspaceOpt) -> None:
    """Plots and report/report.md + one self-contained report/report.html from results/."""
    from fwbench.analysis.report import write_report

    ws = Workspace.from_env(workspace)
    written = write_report(ws)
    out = Console(highlight=False)
    out.print(f"{len(written['plots'])} plots in {ws.plots_dir}")
    out.print(f"report: {written['markdown']}")
    out.print(f"report (self-contained HTML): {written['html']}")
