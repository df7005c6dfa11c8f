"""``fwbench plan``: the seeds a matrix needs to decide each comparison, before it runs."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from fwbench.commands.options import AnalysisConfigOpt, MatrixOpt, OptPath, WorkspaceOpt
from fwbench.commands.output import print_whole


def _stage(ws, stage: str | None, matrix: OptPath):
    if stage is None:
        return None
    from fwbench.config.experiment_matrix import EXPERIMENT_MATRIX, load_matrix
    from fwbench.config.train import find_user_config

    path = find_user_config(ws.configs_dir, EXPERIMENT_MATRIX, matrix)
    return load_matrix(path).stage(stage)


def _stage_family(planned, name: str, cfg) -> tuple[int, str]:
    """The Holm family the planned stage's analysis will have."""
    import math

    from fwbench.analysis.plan import family_of_stage

    axes = (planned.datasets, planned.models, planned.precisions, *planned.sweep.values())
    size, words = family_of_stage(math.prod(len(a) for a in axes), planned.frameworks, cfg)
    return size, f"stage {name}: {words}"


NO_FAMILY = "no correction: give --family or --stage for the analysis' Holm family"


def _family(family: int | None, planned, stage: str | None, cfg) -> tuple[int | None, str]:
    """``(size, where it comes from)``: --family, else the stage's; None: decided later."""
    if family is not None:
        return family, "--family"
    if planned is not None:
        return _stage_family(planned, stage, cfg)
    return None, ""


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
        max=1e6,
        help="Planned sd of the per-seed difference between two arms "
        "(a fraction for accuracies, a relative sd for speed). Default: from pilot runs.",
    ),
    metric: str = typer.Option("test_accuracy", "--metric", help="Metric --sd refers to."),
    margin: float | None = typer.Option(
        None, "--margin", min=0, max=1e6, help="Equivalence margin (default: analysis.yaml's)."
    ),
    stage: str | None = typer.Option(
        None,
        "--stage",
        help="The matrix stage you plan: its seed count is checked and its Holm family "
        "(cells x arm pairs x metrics) sets the level.",
    ),
    family: int | None = typer.Option(
        None,
        "--family",
        min=1,
        help="Comparisons the analysis will correct together (Holm); default: --stage's, "
        "else the pilot's, else 1.",
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
    stage_spec = _stage(ws, stage, matrix)
    planned = len(stage_spec.seeds) if stage_spec is not None else None
    size, source = _family(family, stage_spec, stage, cfg)
    if sd is not None:
        size, source = size or 1, source or NO_FAMILY
        rows = pd.DataFrame([{"comparison": "given sd", "sd_source": "--sd", "pilot_seeds": 0}
                             | plan_row(sd, metric, cfg.margins[metric], cfg, size)])  # fmt: skip
    else:
        rows = plan_from_runs(_pilot_runs(ws, pilot_stage), cfg, family=size)
        if size is None:
            size, source = int(rows["family"].iloc[0]), "the pilot's cells x arm pairs x metrics"
    level = rows["alpha_planned"].iloc[0] if len(rows) else cfg.alpha
    table = Table(
        "cell", "arms", "metric", "sd of a − b", "from", "margin",
        "seeds: equivalence", "seeds: difference",
        *(["enough?"] if planned else []),
        title=f"Seed pairs needed ({cfg.power:.0%} power, at least {cfg.min_seeds}); Holm over a "
        f"family of {size} ({source}): each comparison planned at α/{size} = {level:.3g}, "
        f"Holm's strictest step" + (f"; stage {stage} plans {planned} seeds" if planned else ""),
    )  # fmt: skip
    table.columns[0].overflow = "fold"  # a cell name is never cut
    for r in rows.to_dict("records"):
        m = r["metric"]
        pct = r["margin_scale"] == "relative" or METRICS[m].unit == "fraction"
        sd_text = f"{r['sd_diff'] * 100:.3g} %" if pct else f"{r['sd_diff']:.3g}"
        sd_text = "n/a" if r["sd_diff"] != r["sd_diff"] else sd_text
        need = r["seeds_equivalence"]
        enough = ["yes" if planned >= need else "no"] if planned else []
        if planned and r["sd_diff"] == 0:
            enough = ["-"]
        table.add_row(
            cell_label(r) if "dataset" in r else "-", r["comparison"], METRICS[m].label, sd_text,
            f"{r['sd_source']} ({r['pilot_seeds']})" if r["pilot_seeds"] else r["sd_source"],
            format_margin(m, cfg.margins[m]), seeds_text(need, r["sd_diff"]),
            seeds_text(r["seeds_difference"], r["sd_diff"]), *enough,
        )  # fmt: skip
    print_whole(Console(highlight=False), table)
