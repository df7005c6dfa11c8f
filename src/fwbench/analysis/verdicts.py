"""Verdicts per cell, arm pair and metric: one interval, one decision.

The family: every *tested* row of one analysis (cells x arm pairs x metrics whose paired
differences vary; rows with too few seeds, identical seeds or both arms at a bound are outside
it). Holm controls the family-wise error of the paired t-tests at ``alpha``. Each row's interval
of the mean difference is drawn at the level of its Holm step (``holm_levels``), so it excludes
0 exactly when Holm rejects; the verdict is read from that one interval against the margin
+-delta (the CI-inclusion form of the combined difference and equivalence test, Lakens, Scheel &
Isager 2018): wholly beyond the margin, *different — beyond*; excluding 0 but within the margin,
*different but within*; including 0 and within the margin, *equivalent*; else *inconclusive*.
Equivalence read from a ``1 - a`` interval is TOST at ``a / 2``: conservative, and the seeds
needed (``power.py``) are planned for exactly that rule.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from statsmodels.stats.multitest import multipletests

from fwbench.analysis.overlaps import OVERLAPS, SPEED_METRICS, shared_note, with_overlaps
from fwbench.analysis.paired import (
    CEILING,
    CONSTANT,
    NUMBERS,
    SHARED,
    TESTED,
    margin_on_test_scale,
    paired_compare,
    set_interval,
)
from fwbench.analysis.pairs import comparison_label, comparisons
from fwbench.analysis.power import family_alpha, seeds_needed
from fwbench.analysis.replicates import (
    CELL,
    excluded_counts,
    excluded_text,
    finished,
    with_metric_columns,
)
from fwbench.analysis.speed_rules import mixed_determinism
from fwbench.analysis.wording import (
    arm_label,
    format_ci,
    format_diff,
    format_level,
    format_margin,
    format_p,
)
from fwbench.config.analysis import AnalysisConfig
from fwbench.registry.metric_info import METRICS

BEYOND, WITHIN, EQUIVALENT, INCONCLUSIVE, NO_TEST, NO_VERDICT = (
    "different, beyond margin", "different, within margin", "equivalent", "inconclusive",
    "no test", "no verdict",
)  # fmt: skip
DECIDED = (BEYOND, WITHIN, EQUIVALENT)
ALWAYS_SHOWN = "test_accuracy"  # the row a cell keeps even when no run of it finished


def holm(pvalues: pd.Series, alpha: float) -> pd.Series:
    """Holm-adjusted p-values (statsmodels); NaN p-values stay NaN and are not counted."""
    adjusted = pd.Series(np.nan, index=pvalues.index, dtype="float64")
    valid = pvalues.dropna()
    if len(valid):
        adjusted[valid.index] = multipletests(valid.to_numpy(), alpha=alpha, method="holm")[1]
    return adjusted


def holm_levels(pvalues: pd.Series, alpha: float) -> pd.Series:
    """Per test, the alpha of its Holm step: a two-sided interval at ``1 -`` it excludes 0
    exactly when Holm rejects.

    Sorted by p, the k-th of m tests is tested at ``alpha / (m - k + 1)`` while every earlier
    one was rejected; from the first test not rejected (rank j) on, all take ``alpha / (m - j
    + 1)`` (Holm stops there, and their intervals then include 0).
    """
    levels = pd.Series(np.nan, index=pvalues.index, dtype="float64")
    valid = pvalues.dropna().sort_values(kind="stable")
    m, stopped, level = len(valid), False, alpha
    for k, (index, p) in enumerate(valid.items(), start=1):
        if not stopped:
            level = alpha / (m - k + 1)
            stopped = p > level
        levels[index] = level
    return levels


def decide(low: float, high: float, delta: float) -> str:
    """The verdict the interval ``[low, high]`` of a difference gives against +-``delta``."""
    if low > delta or high < -delta:
        return BEYOND
    if -delta < low and high < delta:
        return WITHIN if (low > 0 or high < 0) else EQUIVALENT
    return INCONCLUSIVE


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
            for metric, info in METRICS.items():
                if metric in SPEED_METRICS and key in mixed:
                    continue  # different determinism: the speed gap would measure the rule
                va, vb = arm[a][metric], arm[b][metric]
                if metric != ALWAYS_SHOWN and va.notna().sum() + vb.notna().sum() == 0:
                    continue  # not recorded by these runs (e.g. top-5 in an older test.json)
                margin = cfg.margins[metric]
                compared = paired_compare(va, vb, margin, cfg, info.bounds)
                if metric in SPEED_METRICS and compared["status"] == TESTED:
                    _leave_out_shared(compared, arm[a], arm[b])
                rows.append(
                    cell
                    | {"comparison": comparison_label(a, b), "arm_a": a, "arm_b": b}
                    | {"metric": metric, "margin": margin.value, "margin_scale": margin.scale}
                    | excluded
                    | compared
                )  # fmt: skip
    return rows


def _leave_out_shared(compared: dict, a: pd.DataFrame, b: pd.DataFrame) -> None:
    """A speed comparison whose runs shared their host with other runs is not tested."""
    pairs = a.index.intersection(b.index)
    note = shared_note(pd.concat([a.loc[pairs, OVERLAPS], b.loc[pairs, OVERLAPS]]))
    if note:
        kept = {k: compared[k] for k in ("diff", "sd_diff")}
        compared |= dict.fromkeys(NUMBERS, np.nan) | kept
        compared |= {"status": SHARED, "note": note, "ci_method": None, "_d": None}


def _verdict(row: dict) -> str:
    if row["status"] == TESTED:
        return decide(row["ci_low"], row["ci_high"], row["margin"])
    return NO_TEST if row["status"] in (CONSTANT, CEILING, SHARED) else NO_VERDICT


def verdict_text(row: dict, cfg: AnalysisConfig) -> str:
    """The verdict in words, with the margin: ``different — beyond ±0.50 pp`` ..."""
    margin = format_margin(row["metric"], cfg.margins[row["metric"]])
    return {
        BEYOND: f"different — beyond {margin}",
        WITHIN: f"different but within {margin}",
        EQUIVALENT: f"equivalent within {margin}",
        INCONCLUSIVE: INCONCLUSIVE,
        NO_TEST: f"{row['note']} (no test)",
        NO_VERDICT: f"no verdict: {row['note']}",
    }[row["verdict"]]


def _wilcoxon_floor(n: int) -> float:
    # the exact two-sided signed-rank test cannot go below 2 / 2^n (all signs alike)
    return 2.0 ** (1 - n)


def _test_disagreements(row: dict, alpha: float) -> list[str]:
    """Paired t against Wilcoxon and against Welch, all unadjusted."""
    n, out = row["n_pairs"], []
    t_sig, w_sig = row["p_t"] < alpha, row["p_w"] < alpha
    if t_sig != w_sig and math.isfinite(row["p_w"]):
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
    return out


def disagreements(row: dict, cfg: AnalysisConfig, family: int) -> list[str]:
    """One sentence for each pair of tests, or of test and verdict, that point different ways."""
    if row["status"] != TESTED:
        return []
    alpha, out = cfg.alpha, _test_disagreements(row, cfg.alpha)
    level = format_level(row["ci_level"])
    excludes_zero = row["ci_low"] > 0 or row["ci_high"] < 0
    if excludes_zero and row["verdict"] == INCONCLUSIVE:
        out.append(
            f"The {level} interval excludes 0 (the arms differ) but reaches across an edge "
            "of the margin: whether the difference is beyond ±δ is not decided."
        )
    if row["p_t"] < alpha and not excludes_zero:
        out.append(
            f"Alone, the paired t rejects 0 (p = {format_p(row['p_t'])}); corrected for the "
            f"{family} tests of the family (Holm p = {format_p(row['p_t_holm'])}) it does not, "
            f"so the {level} interval the verdict reads includes 0."
        )
    if row["p_tost"] < alpha and row["verdict"] in (INCONCLUSIVE, BEYOND):
        out.append(
            f"Alone, TOST at α = {alpha} finds equivalence (p = {format_p(row['p_tost'])}); the "
            f"{level} interval the verdict reads (family-adjusted; within ±δ means TOST at half "
            "its α) reaches beyond the margin."
        )
    return out


def conclusion(row: dict, cfg: AnalysisConfig) -> str:
    """One sentence: the difference with the interval the verdict read, the verdict, the test."""
    metric, margin = row["metric"], cfg.margins[row["metric"]]
    what = f"{arm_label(row['arm_a'])} − {arm_label(row['arm_b'])} {METRICS[metric].label}"
    if row["verdict"] == NO_VERDICT:
        return f"{what}: {verdict_text(row, cfg)}"
    head = f"{what} = {format_diff(metric, row['diff'], margin)}"
    if row["verdict"] == NO_TEST:
        return f"{head}: {verdict_text(row, cfg)}; n = {row['n_pairs']} pairs"
    ci = format_ci(metric, row["ci_low"], row["ci_high"], margin)
    return (
        f"{head} ({format_level(row['ci_level'])} CI {ci}, Holm-adjusted level): "
        f"{verdict_text(row, cfg)} (paired t p_holm = {format_p(row['p_t_holm'])}; "
        f"n = {row['n_pairs']} pairs)"
    )


def _adjust(records: list[dict], cfg: AnalysisConfig, family: int) -> None:
    """The interval at each tested row's Holm level, and the seeds its decision needs."""
    p = pd.Series([r["p_t"] if r["status"] == TESTED else np.nan for r in records])
    adjusted, levels = holm(p, cfg.alpha), holm_levels(p, cfg.alpha)
    planned = family_alpha(cfg.alpha, family)
    for i, r in enumerate(records):
        r["p_t_holm"] = adjusted[i]
        if r["status"] != TESTED:
            continue
        margin = cfg.margins[r["metric"]]
        set_interval(r, np.asarray(r["_d"]), 1 - levels[i], margin, cfg)
        needed = seeds_needed(r["sd_diff"], margin_on_test_scale(margin), planned, cfg.power)
        # below min_seeds no verdict is worded, whatever the power
        r["seeds_equivalence"], r["seeds_difference"] = (max(n, cfg.min_seeds) for n in needed)


def verdict_table(runs: pd.DataFrame, cfg: AnalysisConfig) -> pd.DataFrame:
    """Per cell, arm pair and metric: the paired comparison, Holm over the family, the verdict."""
    records = _rows(with_overlaps(with_metric_columns(runs)), cfg)
    if not records:
        return pd.DataFrame()
    family = sum(r["status"] == TESTED for r in records)
    _adjust(records, cfg, family)
    for r in records:
        r["family_size"] = family
        r["verdict"] = _verdict(r)
        r["verdict_text"] = verdict_text(r, cfg)
        r["why"] = " ".join(disagreements(r, cfg, family)) or None
        r["conclusion"] = conclusion(r, cfg)
        del r["_d"]
    return pd.DataFrame(records)
