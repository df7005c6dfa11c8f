"""The report's statements of method: what is primary and why, the verdict rule, the family."""

from __future__ import annotations

from fwbench.analysis.paired import TESTED
from fwbench.analysis.stats import Analysis
from fwbench.analysis.wording import format_margin
from fwbench.registry.metric_info import METRICS


def _family(analysis: Analysis) -> str:
    comp = analysis.comparison
    size = int(comp["family_size"].iloc[0]) if not comp.empty else 0
    untested = int((comp["status"] != TESTED).sum()) if not comp.empty else 0
    return (
        f"Holm over one family of {size} paired t-tests: every cell x arm pair x metric of "
        f"these results that was tested ({untested} other row(s) were not: too few seed "
        f"pairs, all seeds identical, both arms at a bound of the metric in every run, or "
        f"timing from runs that ran beside other runs on their host)"
    )


def verdict_legend(analysis: Analysis) -> str:
    """How to read a verdict, with the margins and the family-wise control."""
    cfg = analysis.config
    margins = "; ".join(
        f"{info.label} {format_margin(m, cfg.margins[m])}" for m, info in METRICS.items()
    )
    return (
        f"Each verdict reads one interval of the paired difference, drawn at the row's "
        f"Holm-adjusted level (so it excludes 0 exactly when the Holm-corrected paired t "
        f"rejects): *different — beyond ±δ*: the whole interval lies beyond the margin; "
        f"*different but within ±δ*: it excludes 0 and lies within the margin; *equivalent "
        f"within ±δ*: it includes 0 and lies within the margin; *inconclusive*: it reaches "
        f"across a margin edge. *no test*: all seeds identical, or both arms at the metric's "
        f"bound in every run (no evidence of equivalence); *no verdict*: fewer than "
        f"{cfg.min_seeds} seed pairs finished. α = {cfg.alpha}, {_family(analysis)}. "
        f"Margins (`analysis.yaml`): {margins}."
    )


def primary_statement(analysis: Analysis) -> str:
    """Which statistics are primary (paired) and why, and what stands beside them."""
    return (
        "**Primary: the paired statistics** (difference of each seed's pair, its interval, "
        "paired t, TOST). With the same seed every arm sees the same split, batch order and "
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
        f"mean, truncated to [0, 1] for bounded metrics (accuracy, top-5, macro-F1, ECE) and "
        f"at 0 for epoch time and throughput. Arm "
        f"pairs: {analysis.config.reference} against every other arm, and the Keras arms with "
        f"each other (a − b). Per seed pair: the difference (speed: log ratio, shown as a / b − "
        f"1). Rows whose differences do not vary (all seeds identical, or both arms at 0 % or "
        f"100 % in every run) get no test and stay outside the family, and so do speed "
        f"comparisons of runs that overlapped in time with other runs on their host (`status."
        f"json` start and end stamps): their timing measures the neighbour too. The others: "
        f"paired t "
        f"(`scipy.stats.ttest_rel`); Wilcoxon signed-rank (`scipy.stats.wilcoxon`); TOST "
        f"(`statsmodels` `ttost_paired`, log transform for relative margins; shown alone, "
        f"unadjusted); between-arm Pearson r; Hedges' g (`pingouin`). Unpaired: Welch's t and "
        f"Mann–Whitney U over all finished seeds of each arm. {_family(analysis)} (`statsmodels` "
        f"`multipletests`; Holm 1979). The verdict: one interval of the mean difference per "
        f"row, at level 1 − α_k, where α_k is the α of the row's Holm step (α/(m − k + 1) for "
        f"the k-th smallest p while Holm rejects, then the level where it stopped), read against "
        f"±δ with the four cases of the combined difference and equivalence test in its "
        f"confidence-interval form (Lakens, Scheel & Isager 2018, *Equivalence testing for "
        f"psychological research*, AMPPS 1(2)); within ±δ from a 1 − α_k interval is TOST at "
        f"α_k / 2 (Schuirmann 1987): conservative. The interval is the t interval "
        f"(`scipy.stats.t`), or from {cfg.bootstrap_min_pairs} seed pairs on a BCa bootstrap "
        f"(`scipy.stats.bootstrap`, {cfg.bootstrap_resamples} resamples, seed "
        f"{cfg.random_state}; percentile where BCa is degenerate): with fewer pairs a bootstrap "
        f"only resamples a handful of values (with 3, its interval is the range of the seeds). "
        f"Seeds needed (`statsmodels` `TTestPower` on the sd of the paired differences) are "
        f"planned at α/m, the Bonferroni level of Holm's first and strictest step, so that every "
        f"row has the power whatever its rank: to show equivalence, the smallest n whose "
        f"one-sided power at the margin at α/(2m) is (1 + {cfg.power}) / 2, so that the interval "
        f"falls within ±δ with at least {cfg.power:.0%} power when the true difference is 0; to "
        f"detect a margin-sized difference, two-sided power {cfg.power} at α/m. AMP effect: "
        f"unpaired AMP − FP32 per arm, Welch's t with Holm across groups."
    )
