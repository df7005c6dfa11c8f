"""Verdicts per cell, arm pair and metric: *different*, *equivalent within ±δ*, *inconclusive*.

The family: every tested row of one analysis, i.e. all cells x arm pairs x metrics in the
collected results. Holm controls the family-wise error rate at ``alpha`` over that family,
separately for the difference test (paired t) and the equivalence test (TOST). A row is
*equivalent* when its Holm-adjusted TOST p is below alpha, else *different* when its Holm-adjusted
paired-t p is, else *inconclusive*. Rows with fewer than ``min_seeds`` seed pairs get no verdict.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from statsmodels.stats.multitest import multipletests

from fwbench.analysis.paired import CONSTANT, INSUFFICIENT, TESTED, margin_bounds, paired_compare
from fwbench.analysis.pairs import comparison_label, comparisons
from fwbench.analysis.replicates import (
    CELL,
    excluded_counts,
    excluded_text,
    finished,
    with_metric_columns,
)
from fwbench.analysis.speed_rules import SPEED_METRICS, mixed_determinism
from fwbench.analysis.wording import arm_label, format_ci, format_diff, format_margin, format_p
from fwbench.config.analysis import AnalysisConfig
from fwbench.registry.metric_info import METRICS

DIFFERENT, EQUIVALENT, INCONCLUSIVE, NO_VERDICT = (
    "different", "equivalent", "inconclusive", "no verdict",
)  # fmt: skip
ALWAYS_SHOWN = "test_accuracy"  # the row a cell keeps even when no run of it finished


def holm(pvalues: pd.Series, alpha: float) -> pd.Series:
    """Holm-adjusted p-values (statsmodels); NaN p-values stay NaN and are not counted."""
    adjusted = pd.Series(np.nan, index=pvalues.index, dtype="float64")
    valid = pvalues.dropna()
    if len(valid):
        adjusted[valid.index] = multipletests(valid.to_numpy(), alpha=alpha, method="holm")[1]
    return adjusted


def _rows(runs: pd.DataFrame, cfg: AnalysisConfig) -> list[dict]:
    done = finished(runs)
    mixed = mixed_determinism(runs)  # cells whose speed is not compared
    rows = []
    for key, group in runs.groupby(CELL, sort=True, dropna=False):
        cell = dict(zip(CELL, key, strict=True))
        sel = done.loc[done.index.intersection(group.index)]
        for a, b in comparisons(group["framework"].unique(), cfg.reference):
            arm = {f: sel[sel["framework"] == f].set_index("seed") for f in (a, b)}
            excluded = {}
            for side, f in (("a", a), ("b", b)):
                counts = excluded_counts(group[group["framework"] == f])
                excluded[f"n_excluded_{side}"] = sum(counts.values())
                excluded[f"excluded_{side}"] = excluded_text(counts)
            for metric in METRICS:
                if metric in SPEED_METRICS and key in mixed:
                    continue  # different determinism: the speed gap would measure the rule
                va, vb = arm[a][metric], arm[b][metric]
                if metric != ALWAYS_SHOWN and va.notna().sum() + vb.notna().sum() == 0:
                    continue  # not recorded by these runs (e.g. top-5 in an older test.json)
                margin = cfg.margins[metric]
                rows.append(
                    cell
                    | {"comparison": comparison_label(a, b), "arm_a": a, "arm_b": b}
                    | {"metric": metric, "margin": margin.value, "margin_scale": margin.scale}
                    | excluded
                    | paired_compare(va, vb, margin, cfg)
                )  # fmt: skip
    return rows


def _verdict(row: dict, cfg: AnalysisConfig) -> str:
    if row["status"] == INSUFFICIENT:
        return NO_VERDICT
    if row["status"] == CONSTANT:
        margin = cfg.margins[row["metric"]]
        low, upp = margin_bounds(margin)
        value = 1 + row["diff"] if margin.scale == "relative" else row["diff"]
        return EQUIVALENT if low < value < upp else DIFFERENT
    if row["p_tost_holm"] < cfg.alpha:
        return EQUIVALENT
    return DIFFERENT if row["p_t_holm"] < cfg.alpha else INCONCLUSIVE


def verdict_text(row: dict, cfg: AnalysisConfig) -> str:
    """``equivalent within ±0.50 pp``, ``different``, ``inconclusive`` or ``no verdict: ...``."""
    if row["verdict"] == EQUIVALENT:
        return f"equivalent within {format_margin(row['metric'], cfg.margins[row['metric']])}"
    if row["verdict"] == NO_VERDICT:
        return f"no verdict: {row['note']}"
    return row["verdict"]


def _wilcoxon_floor(n: int) -> float:
    # the exact two-sided signed-rank test cannot go below 2 / 2^n (all signs alike)
    return 2.0 ** (1 - n)


def disagreements(row: dict, cfg: AnalysisConfig, family: int) -> list[str]:
    """One sentence for each pair of intervals or tests of ``row`` that point different ways."""
    if row["status"] != TESTED:
        return []
    alpha, n, out = cfg.alpha, row["n_pairs"], []
    t_sig, w_sig = row["p_t"] < alpha, row["p_w"] < alpha
    if t_sig != w_sig:
        floor = _wilcoxon_floor(n)
        reach = (
            f"cannot go below p = {floor:.3g}"
            if floor >= alpha
            else f"reaches p = {floor:.3g} at best"
        )
        out.append(
            f"Paired t (p = {format_p(row['p_t'])}) and Wilcoxon (p = {format_p(row['p_w'])}) "
            f"disagree because Wilcoxon uses only the signs and ranks of the {n} differences "
            f"and with {n} pairs {reach}."
        )  # fmt: skip
    if t_sig != (row["p_welch"] < alpha) and math.isfinite(row["p_welch"]):
        r = row["corr"]
        why = (
            f"pairing by seed removes the variation both arms share (between-arm r = {r:.2f})"
            if math.isfinite(r) and r > 0
            else "the arms' per-seed results are not positively correlated, so pairing "
            "removes no shared variation"
        )
        out.append(
            f"Paired t (p = {format_p(row['p_t'])}) and Welch (p = {format_p(row['p_welch'])}) "
            f"disagree because {why}."
        )
    ci_excludes_zero = row["ci_low"] > 0 or row["ci_high"] < 0
    delta = cfg.margins[row["metric"]].value  # in reading terms for both kinds of margin
    inside_margin = -delta < row["ci_low"] and row["ci_high"] < delta
    if ci_excludes_zero and row["verdict"] == EQUIVALENT:
        out.append(
            "The CI excludes 0 yet TOST finds the arms equivalent: the difference is "
            "probably real but smaller than the margin."
        )
    elif ci_excludes_zero and row["verdict"] == INCONCLUSIVE:
        out.append(
            f"The {cfg.confidence:.0%} bootstrap CI excludes 0 but is not corrected for the "
            f"{family} tests of the family (Holm-adjusted paired t p = "
            f"{format_p(row['p_t_holm'])}), and from {n} seeds a bootstrap CI is too narrow."
        )
    elif inside_margin and row["verdict"] != EQUIVALENT:
        out.append(
            f"The bootstrap CI lies within ±δ but TOST (t with {n - 1} df, Holm-adjusted p = "
            f"{format_p(row['p_tost_holm'])} over {family} tests) does not reject: from {n} "
            "seeds a bootstrap CI is too narrow to show equivalence alone."
        )
    elif not ci_excludes_zero and row["verdict"] == DIFFERENT:
        out.append(
            f"The bootstrap CI includes 0 while the paired t rejects: with {n} seeds the "
            "bootstrap and the t distribution differ in their tails."
        )
    return out


def conclusion(row: dict, cfg: AnalysisConfig) -> str:
    """One sentence: the difference with its CI, the verdict and the numbers behind it."""
    metric, margin = row["metric"], cfg.margins[row["metric"]]
    what = f"{arm_label(row['arm_a'])} − {arm_label(row['arm_b'])} {METRICS[metric].label}"
    if row["verdict"] == NO_VERDICT:
        return f"{what}: {verdict_text(row, cfg)}"
    ci = format_ci(metric, row["ci_low"], row["ci_high"], margin)
    head = f"{what} = {format_diff(metric, row['diff'], margin)} ({cfg.confidence:.0%} CI {ci})"
    if row["status"] == CONSTANT:
        return f"{head}: {verdict_text(row, cfg)} ({row['note']}; n = {row['n_pairs']} pairs)"
    return (
        f"{head}: {verdict_text(row, cfg)} (TOST {format_margin(metric, margin)} p_holm = "
        f"{format_p(row['p_tost_holm'])}; paired t p_holm = {format_p(row['p_t_holm'])}; "
        f"n = {row['n_pairs']} pairs)"
    )


def verdict_table(runs: pd.DataFrame, cfg: AnalysisConfig) -> pd.DataFrame:
    """Per cell, arm pair and metric: the paired comparison, Holm over the family, the verdict."""
    table = pd.DataFrame(_rows(with_metric_columns(runs), cfg))
    if table.empty:
        return table
    tested = table["status"] == TESTED
    table["p_t_holm"] = holm(table["p_t"].where(tested), cfg.alpha)
    table["p_tost_holm"] = holm(table["p_tost"].where(tested), cfg.alpha)
    table["family_size"] = int(tested.sum())
    table["verdict"] = [_verdict(r, cfg) for r in table.to_dict("records")]
    records = table.to_dict("records")
    table["verdict_text"] = [verdict_text(r, cfg) for r in records]
    table["why"] = [" ".join(disagreements(r, cfg, int(tested.sum()))) or None for r in records]
    table["conclusion"] = [conclusion(r, cfg) for r in records]
    return table
