"""One cell, one metric, two arms: the paired-by-seed comparison and its unpaired companions.

With the same seed both arms see the same split, batch order and augmentation draws, so the
replicate unit is the seed *pair*: the primary statistics are those of the per-seed differences
(mean, BCa bootstrap CI, paired t, Wilcoxon signed-rank, TOST against the margin). Welch's t and
Mann-Whitney U over all finished seeds of each arm are reported beside them.

A relative margin (speed) is tested on the log scale: the difference is the ratio ``a / b``
(shown as ``a / b - 1``) and TOST is statsmodels' ``ttost_paired(..., transform=np.log)``.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pingouin as pg
from scipy import stats
from statsmodels.stats.weightstats import ttost_paired

from fwbench.analysis.power import seeds_needed
from fwbench.config.analysis import AnalysisConfig, MarginConfig

INSUFFICIENT = "too few seeds"
CONSTANT = "constant differences"
TESTED = "tested"
NUMBERS = (
    "diff", "ci_low", "ci_high", "sd_diff", "corr", "t", "p_t", "w", "p_w", "p_tost",
    "welch_t", "p_welch", "mwu_u", "p_mwu", "hedges_g", "seeds_equivalence", "seeds_difference",
)  # fmt: skip


def margin_bounds(margin: MarginConfig) -> tuple[float, float]:
    """The equivalence interval in the test's terms: a difference, or a ratio a / b."""
    if margin.scale == "relative":
        return 1 - margin.value, 1 + margin.value
    return -margin.value, margin.value


def margin_on_test_scale(margin: MarginConfig) -> float:
    """The margin on the scale the differences are tested on (log ratio for relative ones)."""
    if margin.scale == "relative":
        return min(-math.log(1 - margin.value), math.log(1 + margin.value))
    return margin.value


def _to_reading(value: float, margin: MarginConfig) -> float:
    """A test-scale difference back in reading terms (``a / b - 1`` for relative margins)."""
    return math.expm1(value) if margin.scale == "relative" else value


def bootstrap_mean_ci(d: np.ndarray, cfg: AnalysisConfig) -> tuple[float, float, str]:
    """CI of the mean of ``d`` by ``scipy.stats.bootstrap``: BCa, percentile if BCa degenerates."""
    if np.ptp(d) == 0:
        return float(d[0]), float(d[0]), "none: all differences equal"
    note = ""
    for method in ("BCa", "percentile"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            res = stats.bootstrap(
                (d,),
                np.mean,
                n_resamples=cfg.bootstrap_resamples,
                confidence_level=cfg.confidence,
                method=method,
                rng=np.random.default_rng(cfg.random_state),
            )
        low, high = res.confidence_interval
        degenerate = any(issubclass(w.category, stats.DegenerateDataWarning) for w in caught)
        if np.isfinite(low) and np.isfinite(high) and not degenerate:
            return float(low), float(high), method + note
        note = f" (BCa degenerate with {len(d)} seeds)"
    return math.nan, math.nan, "none"


def on_test_scale(values: np.ndarray, margin: MarginConfig) -> np.ndarray:
    """Values on the scale a margin is tested on: log for relative margins, else as they are."""
    return np.log(values) if margin.scale == "relative" else values


def _unpaired(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    out = dict.fromkeys(("welch_t", "p_welch", "mwu_u", "p_mwu"), math.nan)
    if len(a) < 2 or len(b) < 2:
        return out
    mwu = stats.mannwhitneyu(a, b, alternative="two-sided")
    out["mwu_u"], out["p_mwu"] = float(mwu.statistic), float(mwu.pvalue)
    if np.ptp(a) > 0 or np.ptp(b) > 0:
        welch = stats.ttest_ind(a, b, equal_var=False)
        out["welch_t"], out["p_welch"] = float(welch.statistic), float(welch.pvalue)
    return out


def _paired_tests(xa: np.ndarray, xb: np.ndarray, raw: tuple, margin: MarginConfig) -> dict:
    """Paired t, Wilcoxon, Hedges' g, correlation, TOST of pairs with non-constant differences."""
    out: dict[str, float] = {}
    t = stats.ttest_rel(xa, xb)
    out["t"], out["p_t"] = float(t.statistic), float(t.pvalue)
    d = xa - xb
    if np.any(d != 0):
        w = stats.wilcoxon(xa, xb)
        out["w"], out["p_w"] = float(w.statistic), float(w.pvalue)
    out["hedges_g"] = float(pg.compute_effsize(xa, xb, paired=True, eftype="hedges"))
    if len(d) >= 3 and np.ptp(xa) > 0 and np.ptp(xb) > 0:
        out["corr"] = float(stats.pearsonr(xa, xb).statistic)
    low, upp = margin_bounds(margin)
    log = np.log if margin.scale == "relative" else None
    out["p_tost"] = float(ttost_paired(raw[0], raw[1], low, upp, transform=log)[0])
    return out


def paired_compare(
    a: pd.Series, b: pd.Series, margin: MarginConfig, cfg: AnalysisConfig
) -> dict[str, object]:
    """Compare arm ``a`` with arm ``b`` (``a - b``); each a Series of one metric indexed by seed.

    Returns the counts, means, the paired difference with its CI, every test's statistic and
    p-value (raw: the family-wise correction is applied over the whole table later), the
    seeds needed and a ``status``: tested, ``constant differences`` (every pair differs by the
    same amount: no test, the exact value decides) or ``too few seeds`` (nothing tested).
    """
    a, b = a.dropna().astype("float64"), b.dropna().astype("float64")
    pairs = a.index.intersection(b.index).sort_values()
    out: dict[str, object] = {"n_a": len(a), "n_b": len(b), "n_pairs": len(pairs)}
    out |= {"mean_a": a.mean() if len(a) else math.nan, "mean_b": b.mean() if len(b) else math.nan}
    out |= dict.fromkeys(NUMBERS, math.nan) | {"ci_method": None, "note": None}
    raw_a, raw_b = a[pairs].to_numpy(), b[pairs].to_numpy()
    if margin.scale == "relative" and (np.any(raw_a <= 0) or np.any(raw_b <= 0)):
        out["status"], out["note"] = INSUFFICIENT, "non-positive values: no ratio"
        return out
    xa, xb = on_test_scale(raw_a, margin), on_test_scale(raw_b, margin)
    d = xa - xb
    if len(d):
        out["diff"] = _to_reading(float(np.mean(d)), margin)
    if len(pairs) < cfg.min_seeds:
        out["status"] = INSUFFICIENT
        out["note"] = f"{len(pairs)} paired seed(s) finished; a verdict needs {cfg.min_seeds}"
        return out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        out |= _unpaired(on_test_scale(a.to_numpy(), margin), on_test_scale(b.to_numpy(), margin))
    low, high, out["ci_method"] = bootstrap_mean_ci(d, cfg)
    out["ci_low"], out["ci_high"] = _to_reading(low, margin), _to_reading(high, margin)
    out["sd_diff"] = float(np.std(d, ddof=1))
    needed = seeds_needed(out["sd_diff"], margin_on_test_scale(margin), cfg.alpha, cfg.power)
    # below min_seeds no verdict is worded, whatever the power
    out["seeds_equivalence"], out["seeds_difference"] = (max(n, cfg.min_seeds) for n in needed)
    if np.ptp(d) == 0:
        out["status"] = CONSTANT
        out["note"] = "every seed pair differs by the same amount: no test, the value decides"
        return out
    out |= _paired_tests(xa, xb, (raw_a, raw_b), margin)
    out["status"] = TESTED
    return out
