"""The report's statements of method: what is primary and why, the verdict rule, the family."""

from __future__ import annotations

from fwbench.analysis.stats import Analysis
from fwbench.analysis.wording import format_margin
from fwbench.registry.metric_info import METRICS


def _family(analysis: Analysis) -> str:
    comp = analysis.comparison
    size = int(comp["family_size"].iloc[0]) if not comp.empty else 0
    return (
        f"Holm over one family of {size} tests: every cell x arm pair x metric of these results "
        f"with at least {analysis.config.min_seeds} seed pairs, separately for the difference "
        "tests and the equivalence tests"
    )


def verdict_legend(analysis: Analysis) -> str:
    """How to read a verdict, with the margins and the family-wise control."""
    cfg = analysis.config
    margins = "; ".join(
        f"{info.label} {format_margin(m, cfg.margins[m])}" for m, info in METRICS.items()
    )
    return (
        f"*equivalent within ±δ*: TOST rejects a difference beyond the margin; *different*: the "
        f"paired t-test rejects a zero difference and TOST does not reject; *inconclusive*: "
        f"neither rejects; *no verdict*: fewer than {cfg.min_seeds} seed pairs finished. "
        f"α = {cfg.alpha}, {_family(analysis)}. Margins (`analysis.yaml`): {margins}."
    )


def primary_statement(analysis: Analysis) -> str:
    """Which statistics are primary (paired) and why, and what stands beside them."""
    return (
        "**Primary: the paired statistics** (difference of each seed's pair, its BCa bootstrap "
        "CI, paired t, TOST). With the same seed every arm sees the same split, batch order and "
        "augmentation draws, so a seed's two results share everything but the framework; the "
        "per-seed difference removes that shared part (see the between-arm r). Wilcoxon "
        "signed-rank checks the paired t without assuming normal differences. Welch's t and "
        "Mann–Whitney U ignore the pairing and are shown for reference only. Speed metrics are "
        "compared as ratios (log scale)."
    )


def methods(analysis: Analysis) -> str:
    """The Methods section: every statistic, the library that computes it, the settings."""
    cfg = analysis.config
    return (
        f"Seeds are the replicate unit; only runs in state `done` with test metrics count, and "
        f"diverged, failed, interrupted and unfinished runs are counted and excluded from every "
        f"test. Per cell and arm: mean, sd (n−1) and a t-based {cfg.confidence:.0%} CI of the "
        f"mean, truncated to [0, 1] for bounded metrics (accuracy, top-5, macro-F1, ECE). Arm "
        f"pairs: {analysis.config.reference} against every other arm, and the Keras arms with "
        f"each other (a − b). Per seed pair: the difference (speed: log ratio); its mean with a "
        f"{cfg.confidence:.0%} bootstrap CI (`scipy.stats.bootstrap`, BCa, percentile where BCa "
        f"is degenerate, {cfg.bootstrap_resamples} resamples, seed {cfg.random_state}); paired t "
        f"(`scipy.stats.ttest_rel`); Wilcoxon signed-rank (`scipy.stats.wilcoxon`); TOST "
        f"(`statsmodels` `ttost_paired`, log transform for relative margins); between-arm "
        f"Pearson r; Hedges' g (`pingouin`). Unpaired: Welch's t and Mann–Whitney U over all "
        f"finished seeds of each arm. {_family(analysis)} (`statsmodels` `multipletests`). Seeds "
        f"needed (`statsmodels` `TTestPower` on the sd of the paired differences): to show "
        f"equivalence, the smallest n whose one-sided power at the margin is (1 + "
        f"{cfg.power}) / 2, so that TOST has at least {cfg.power:.0%} power when the true "
        f"difference is 0; to detect a margin-sized difference, two-sided power {cfg.power}. "
        f"AMP effect: unpaired AMP − FP32 per arm, Welch's t with Holm across groups."
    )
