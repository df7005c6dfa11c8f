"""One cell, one metric, two arms: the paired-by-seed comparison and its unpaired companions.

With the same seed both arms see the same split, batch order and augmentation draws, so the
replicate unit is the seed *pair*: the primary statistics are those of the per-seed differences
(mean and its interval, paired t, Wilcoxon signed-rank, TOST against the margin). Welch's t and
Mann-Whitney U over all finished seeds of each arm are reported beside them.

The interval of the mean difference is the t interval, or BCa (``scipy.stats.bootstrap``) from
``bootstrap_min_pairs`` seed pairs on: with fewer pairs a bootstrap can only resample a handful
of values, and with 3 its "95 %" interval is the range of the seeds. Pairs that cannot be
tested say why instead: too few seeds, every seed pair differing by the same amount (no
variation: no test), or both arms at the metric's bound in every run (ceiling).

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

from fwbench.config.analysis import AnalysisConfig, MarginConfig

INSUFFICIENT = "too few seeds"
CONSTANT = "constant differences"
CEILING = "at a bound"
SHARED = "timing shared"  # speed of runs that ran beside others on their host (timing.py)
TESTED = "tested"
T_INTERVAL = "t"
NUMBERS = (
    "diff", "ci_low", "ci_high", "ci_level", "sd_diff", "corr", "t", "p_t", "w", "p_w", "p_tost",
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


def bootstrap_mean_ci(
    d: np.ndarray, cfg: AnalysisConfig, level: float | None = None
) -> tuple[float, float, str]:
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
                confidence_level=cfg.confidence if level is None else level,
                method=method,
                rng=np.random.default_rng(cfg.random_state),
            )
        low, high = res.confidence_interval
        degenerate = any(issubclass(w.category, stats.DegenerateDataWarning) for w in caught)
        if np.isfinite(low) and np.isfinite(high) and not degenerate:
            return float(low), float(high), method + note
        note = f" (BCa degenerate with {len(d)} seeds)"
    return math.nan, math.nan, "none"


def t_mean_ci(d: np.ndarray, level: float) -> tuple[float, float]:
    """The t interval of the mean of ``d`` at ``level`` (scipy; the point itself if sd is 0)."""
    mean, sem = float(np.mean(d)), float(stats.sem(d))
    if sem == 0:
        return mean, mean
    low, high = stats.t.interval(level, df=len(d) - 1, loc=mean, scale=sem)
    return float(low), float(high)


def mean_ci(d: np.ndarray, level: float, cfg: AnalysisConfig) -> tuple[float, float, str]:
    """The interval a decision reads: t, or BCa from ``cfg.bootstrap_min_pairs`` pairs on."""
    if len(d) >= cfg.bootstrap_min_pairs:
        return bootstrap_mean_ci(d, cfg, level)
    return (*t_mean_ci(d, level), T_INTERVAL)


def set_interval(out: dict, d: np.ndarray, level: float, margin: MarginConfig, cfg) -> None:
    """Put the interval of ``d`` at ``level`` into ``out``, in reading terms."""
    low, high, out["ci_method"] = mean_ci(d, level, cfg)
    out["ci_low"], out["ci_high"] = _to_reading(low, margin), _to_reading(high, margin)
    out["ci_level"] = level


def _bound_note(raw_a: np.ndarray, raw_b: np.ndarray, bounds: tuple | None) -> str | None:
    """``ceiling: 100 % in every run`` when both arms sit at one bound of the metric throughout."""
    if bounds is None:
        return None
    for value, word in ((bounds[1], "ceiling"), (bounds[0], "floor")):
        if np.all(raw_a == value) and np.all(raw_b == value):
            return f"{word}: {value * 100:g} % in every run"
    return None


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
    a: pd.Series,
    b: pd.Series,
    margin: MarginConfig,
    cfg: AnalysisConfig,
    bounds: tuple[float, float] | None = None,
) -> dict[str, object]:
    """Compare arm ``a`` with arm ``b`` (``a - b``); each a Series of one metric indexed by seed.

    Returns the counts, means, the paired difference with its interval at ``cfg.confidence``
    (``verdicts.py`` widens it to the family-adjusted level), every test's statistic and
    p-value (raw), and a ``status``: tested; ``too few seeds``; ``constant differences`` (every
    pair differs by the same amount: nothing to test); ``at a bound`` (both arms at the
    metric's ``bounds`` in every run, e.g. top-5 100 %). Only tested rows carry evidence.
    ``_d`` holds the per-seed differences on the test scale, for the family-adjusted interval.
    """
    a, b = a.dropna().astype("float64"), b.dropna().astype("float64")
    pairs = a.index.intersection(b.index).sort_values()
    out: dict[str, object] = {"n_a": len(a), "n_b": len(b), "n_pairs": len(pairs)}
    out |= {"mean_a": a.mean() if len(a) else math.nan, "mean_b": b.mean() if len(b) else math.nan}
    out |= dict.fromkeys(NUMBERS, math.nan) | {"ci_method": None, "note": None, "_d": None}
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
    out["sd_diff"] = float(np.std(d, ddof=1))
    bound = _bound_note(raw_a, raw_b, bounds)
    if bound or np.ptp(d) == 0:
        out["status"] = CEILING if bound else CONSTANT
        out["note"] = bound or (
            "all seeds identical" if np.all(d == 0) else "the same difference in every seed"
        )
        return out
    out["_d"] = tuple(d)
    set_interval(out, d, cfg.confidence, margin, cfg)
    out |= _paired_tests(xa, xb, (raw_a, raw_b), margin)
    out["status"] = TESTED
    return out
