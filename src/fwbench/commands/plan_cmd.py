"""``fwbench plan``: the seeds a matrix needs to decide each comparison, before it runs."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from fwbench.commands.options import AnalysisConfigOpt, MatrixOpt, OptPath, WorkspaceOpt


def _planned_seeds(ws, stage: str | None, matrix: OptPath) -> int | None:
    if stage is None:
        return None
    from fwbench.config.train import EXPERIMENT_MATRIX, find_user_config, load_matrix

    path = find_user_config(ws.configs_dir, EXPERIMENT_MATRIX, matrix)
    return len(load_matrix(path).stage(stage).seeds)


def _pilot_runs(ws, pilot_stage: str | None):
    """Collected results if present, else the run directories read now; one stage if asked."""
    from fwbench.core.errors import FwbenchError
    from fwbench.study.collect import RUNS_PARQUET, collect_runs, load_results

    collected = (ws.results_dir / RUNS_PARQUET).is_file()
    runs = load_results(ws)[0] if collected else collect_runs(ws)[0]
    if pilot_stage is not None:
        runs = runs[runs["stage"] == pilot_stage]
    if runs.empty:
        raise FwbenchError(
            "no pilot runs to estimate the sd from",
            path=ws.runs_dir,
            fix="run a small pilot stage first (e.g. 3 seeds), or give --sd",
        )
    return runs


def plan(
    sd: float | None = typer.Option(
        None,
        "--sd",
        min=0,
        help="Planned sd of the per-seed difference between two arms "
        "(a fraction for accuracies, a relative sd for speed). Default: from pilot runs.",
    ),
    metric: str = typer.Option("test_accuracy", "--metric", help="Metric --sd refers to."),
    margin: float | None = typer.Option(
        None, "--margin", min=0, help="Equivalence margin (default: analysis.yaml's)."
    ),
    stage: str | None = typer.Option(
        None, "--stage", help="The matrix stage you plan: its seed count is checked."
    ),
    pilot_stage: str | None = typer.Option(
        None, "--pilot-stage", help="Only pilot runs of this stage (default: all finished runs)."
    ),
    config: OptPath = AnalysisConfigOpt,
    matrix: OptPath = MatrixOpt,
    workspace: OptPath = WorkspaceOpt,
) -> None:
    """Seeds needed to decide each comparison against its margin, with the configured power."""
    import pandas as pd

    from fwbench.analysis.plan import plan_from_runs, plan_row
    from fwbench.analysis.style import cell_label
    from fwbench.analysis.tables import seeds_text
    from fwbench.analysis.wording import format_margin
    from fwbench.commands.analysis_cmd import load_settings
    from fwbench.core.paths import Workspace
    from fwbench.registry.metric_info import METRICS
    from fwbench.registry.models import check_choice

    ws = Workspace.from_env(workspace)
    cfg = load_settings(ws, config)
    check_choice("metric", metric, tuple(METRICS))
    if margin is not None:
        margins = {m: v.model_copy(update={"value": margin}) for m, v in cfg.margins.items()}
        cfg = cfg.model_copy(update={"margins": margins})
    planned = _planned_seeds(ws, stage, matrix)
    if sd is not None:
        rows = pd.DataFrame([{"comparison": "given sd", "sd_source": "--sd", "pilot_seeds": 0}
                             | plan_row(sd, metric, cfg.margins[metric], cfg)])  # fmt: skip
    else:
        rows = plan_from_runs(_pilot_runs(ws, pilot_stage), cfg)
    table = Table(
        "cell", "arms", "metric", "sd of a − b", "from", "margin",
        "seeds: equivalence", "seeds: difference",
        *(["enough?"] if planned else []),
        title=f"Seed pairs needed ({cfg.power:.0%} power, α = {cfg.alpha}, at least "
        f"{cfg.min_seeds})" + (f"; stage {stage} plans {planned} seeds" if planned else ""),
    )  # fmt: skip
    table.columns[0].overflow = "fold"  # a cell name is never cut
    for r in rows.to_dict("records"):
        m = r["metric"]
        pct = r["margin_scale"] == "relative" or METRICS[m].unit == "fraction"
        sd_text = f"{r['sd_diff'] * 100:.3g} %" if pct else f"{r['sd_diff']:.3g}"
        need = r["seeds_equivalence"]
        enough = ["yes" if planned >= need else "no"] if planned else []
        table.add_row(
            cell_label(r) if "dataset" in r else "-", r["comparison"], METRICS[m].label, sd_text,
            f"{r['sd_source']} ({r['pilot_seeds']})" if r["pilot_seeds"] else r["sd_source"],
            format_margin(m, cfg.margins[m]), seeds_text(need),
            seeds_text(r["seeds_difference"]), *enough,
        )  # fmt: skip
    Console(highlight=False).print(table)
