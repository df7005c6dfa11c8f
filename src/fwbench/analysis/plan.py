"""``fwbench plan``: how many seeds a matrix needs, before it runs, from pilot runs or a given sd.

From pilot runs, the sd of the per-seed differences between two arms is used when at least two
seed pairs finished; otherwise the within-arm sd of any arm with two or more finished seeds,
times sqrt(2) (the sd of a difference of two independent runs: no pairing benefit assumed).

The analysis corrects every tested cell x arm pair x metric together (Holm), so seeds are
planned for that family: each comparison at ``alpha / family`` (``power.family_alpha``).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from fwbench.analysis.paired import margin_on_test_scale, on_test_scale
from fwbench.analysis.pairs import comparison_label, comparisons
from fwbench.analysis.power import family_alpha, seeds_needed
from fwbench.analysis.replicates import CELL, finished
from fwbench.config.analysis import AnalysisConfig, MarginConfig
from fwbench.registry.metric_info import METRICS

PAIRED, WITHIN = "paired differences", "within-arm sd x sqrt(2)"


def _arm_values(sel: pd.DataFrame, arm: str, metric: str, margin: MarginConfig) -> pd.Series:
    values = sel[sel["framework"] == arm].set_index("seed")[metric].dropna()
    values = values[values > 0] if margin.scale == "relative" else values
    return pd.Series(on_test_scale(values.to_numpy(), margin), index=values.index)


def pilot_sd(a: pd.Series, b: pd.Series) -> tuple[float, str, int]:
    """``(sd of a - b per seed, where it came from, seeds it rests on)`` from pilot values."""
    pairs = a.index.intersection(b.index)
    if len(pairs) >= 2:
        return float(np.std(a[pairs] - b[pairs], ddof=1)), PAIRED, len(pairs)
    arms = [x for x in (a, b) if len(x) >= 2]
    if not arms:
        return math.nan, "no arm has two finished seeds", 0
    dof = sum(len(x) - 1 for x in arms)
    pooled = math.sqrt(sum((len(x) - 1) * float(np.var(x, ddof=1)) for x in arms) / dof)
    return math.sqrt(2) * pooled, WITHIN, sum(len(x) for x in arms)


def plan_row(
    sd: float, metric: str, margin: MarginConfig, cfg: AnalysisConfig, family: int = 1
) -> dict:
    """Seeds needed for one metric from an sd on the margin's test scale, in a Holm family."""
    alpha = family_alpha(cfg.alpha, family)
    equivalence, difference = seeds_needed(sd, margin_on_test_scale(margin), alpha, cfg.power)
    return {
        "metric": metric,
        "sd_diff": sd,
        "margin": margin.value,
        "margin_scale": margin.scale,
        "family": family,
        "alpha_planned": alpha,
        "seeds_equivalence": max(equivalence, cfg.min_seeds),
        "seeds_difference": max(difference, cfg.min_seeds),
    }


def family_of_stage(cells: int, arms: list[str], cfg: AnalysisConfig) -> tuple[int, str]:
    """The Holm family a stage's analysis will have: cells x arm pairs x metrics, and in words."""
    pairs = len(comparisons(arms, cfg.reference))
    size = cells * pairs * len(METRICS)
    return size, f"{cells} cell(s) x {pairs} arm pair(s) x {len(METRICS)} metrics"


def plan_from_runs(
    runs: pd.DataFrame,
    cfg: AnalysisConfig,
    metrics: list[str] | None = None,
    family: int | None = None,
) -> pd.DataFrame:
    """Per pilot cell, arm pair and metric: the sd estimate and the seeds each decision needs.

    ``family``: the Holm family the planned analysis will have; default the pilot's own
    (every cell x arm pair x metric planned here).
    """
    done = finished(runs)
    found = []
    for key, sel in done.groupby(CELL, sort=True, dropna=False):
        for a, b in comparisons(sel["framework"].unique(), cfg.reference):
            for metric in metrics or list(METRICS):
                margin = cfg.margins[metric]
                va, vb = (_arm_values(sel, f, metric, margin) for f in (a, b))
                if len(va) + len(vb) == 0:
                    continue
                sd, source, n = pilot_sd(va, vb)
                head = dict(zip(CELL, key, strict=True))
                head |= {"comparison": comparison_label(a, b), "pilot_seeds": n}
                found.append((head | {"sd_source": source}, sd, metric, margin))
    size = family or len(found)
    return pd.DataFrame([h | plan_row(sd, m, mg, cfg, size) for h, sd, m, mg in found])
