"""``fwbench collect``, ``analyze`` and ``report``: run directories to tables, statistics, report.

None of these imports a framework: they read files and use pandas, scipy and matplotlib only.
"""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from fwbench.commands.options import AnalysisConfigOpt, MatrixOpt, OptPath, WorkspaceOpt
from fwbench.commands.output import print_whole
from fwbench.core.paths import Workspace

StageOpt = typer.Option(
    None,
    "--stage",
    "-s",
    help="Collect this matrix stage's expected runs (repeatable); default: every run directory.",
)

ScopeStageOpt = typer.Option(
    None,
    "--stage",
    "-s",
    help="Only this matrix stage's runs, as `collect --stage` counts them (repeatable); "
    "default: every collected run.",
)


def collect(
    stage: list[str] | None = StageOpt,
    matrix: OptPath = MatrixOpt,
    workspace: OptPath = WorkspaceOpt,
) -> None:
    """Summarise run directories into results/runs.csv, runs.parquet and epochs.parquet."""
    from fwbench.study.collect import collect_runs, write_results

    ws = Workspace.from_env(workspace)
    runs, epochs = collect_runs(ws, stage or None, matrix)
    paths = write_results(ws, runs, epochs)
    counts = runs["state"].value_counts().to_dict()
    states = ", ".join(f"{v} {k}" for k, v in counts.items()) or "no runs"
    out = Console(highlight=False)
    out.print(f"{len(runs)} runs ({states}), {len(epochs)} epoch records")
    out.print(f"wrote {', '.join(str(p) for p in paths)}")


def load_settings(ws: Workspace, config: OptPath):
    """The analysis settings: ``--config``, else ``configs/analysis.yaml``, else the defaults."""
    from fwbench.config.analysis import ANALYSIS, load_analysis_config
    from fwbench.config.train import find_user_config

    return load_analysis_config(find_user_config(ws.configs_dir, ANALYSIS, config))


def _verdict_table(analysis) -> Table:
    from fwbench.analysis.style import cell_label
    from fwbench.analysis.tables import diff_with_ci, family_text, seeds_cell
    from fwbench.analysis.verdicts import DECIDED
    from fwbench.registry.metric_info import METRICS

    cfg = analysis.config
    table = Table(
        "cell", "arms", "metric", "pairs", "verdict", "a − b \\[adjusted CI]",
        "seeds: equiv. / diff.",
        title=f"Verdicts (α = {cfg.alpha}, Holm over {analysis.comparison['family_size'].iloc[0]} "
        f"tested rows, each interval at its Holm-adjusted level; seeds for {cfg.power:.0%} "
        f"power at {family_text(analysis)})",
    )  # fmt: skip
    table.columns[0].overflow = "fold"  # a cell name is never cut
    for r in analysis.comparison.to_dict("records"):
        seeds = seeds_cell(r, "seeds_equivalence")
        if r["verdict"] not in DECIDED and r["sd_diff"] != 0:
            seeds += f" / {seeds_cell(r, 'seeds_difference')}"
        table.add_row(
            cell_label(r), r["comparison"], METRICS[r["metric"]].label, str(r["n_pairs"]),
            r["verdict_text"], diff_with_ci(r, analysis), seeds,
        )  # fmt: skip
    return table


def analyze(
    stage: list[str] | None = ScopeStageOpt,
    matrix: OptPath = MatrixOpt,
    config: OptPath = AnalysisConfigOpt,
    workspace: OptPath = WorkspaceOpt,
) -> None:
    """Statistics across seeds from results/ -> analysis/*.csv, *.md, *.tex, with verdicts."""
    from fwbench.analysis.attribution import write_attribution
    from fwbench.analysis.diverged_seeds import divergence_lines
    from fwbench.analysis.replicates import CELL, excluded_counts, excluded_text
    from fwbench.analysis.speed_rules import refusal_lines
    from fwbench.analysis.stats import analyze as run_analysis
    from fwbench.analysis.style import cell_label
    from fwbench.analysis.tables import write_analysis
    from fwbench.study.collect import load_results
    from fwbench.study.stage_scope import select_stages

    ws = Workspace.from_env(workspace)
    runs, _ = load_results(ws)
    runs, _, scope = select_stages(ws, runs, None, stage, matrix)
    analysis = run_analysis(runs, load_settings(ws, config))
    paths = write_analysis(ws, analysis, scope.text())
    paths = [*paths, *write_attribution(runs, ws.analysis_dir, scope.text())]  # attribution
    out = Console(highlight=False)
    for line in (scope.text(), *scope.unfinished()):
        out.print(line, soft_wrap=True)  # one line each, also in a log
    for key, group in runs.groupby([*CELL, "framework"], sort=True, dropna=False):
        counts = excluded_counts(group)
        if counts:
            cell = cell_label(dict(zip(CELL, key[:-1], strict=True)))
            out.print(f"{cell} {key[-1]}: excluded {excluded_text(counts)}")
    for line in refusal_lines(runs):
        out.print(line)
    for line in divergence_lines(analysis.divergence):
        out.print(line)
    if not analysis.comparison.empty:
        print_whole(out, _verdict_table(analysis))
    out.print(f"wrote {len(paths)} tables to {ws.analysis_dir}")


def report(
    stage: list[str] | None = ScopeStageOpt,
    matrix: OptPath = MatrixOpt,
    config: OptPath = AnalysisConfigOpt,
    workspace: OptPath = WorkspaceOpt,
) -> None:
    """Plots and report/report.md + one self-contained report/report.html from results/."""
    from fwbench.analysis.report import write_report

    ws = Workspace.from_env(workspace)
    written = write_report(ws, load_settings(ws, config), stage, matrix)
    out = Console(highlight=False)
    for line in (written["scope"].text(), *written["scope"].unfinished()):
        out.print(line, soft_wrap=True)  # one line each, also in a log
    out.print(f"{len(written['plots'])} plots in {ws.plots_dir} (PNG, SVG and PDF)")
    out.print(f"report: {written['markdown']}")
    out.print(f"report (self-contained HTML): {written['html']}")
