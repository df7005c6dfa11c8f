"""Seeds needed: how many paired seeds decide a comparison against its margin, at a given power.

The decision reads one two-sided t interval of the mean paired difference at level
``1 - alpha`` (``alpha`` already adjusted for the family, see ``family_alpha``):

- equivalence: the interval lies within +-delta, i.e. both one-sided t-tests at ``alpha / 2``
  reject (TOST at ``alpha / 2``). If the true difference is 0, its power is at least
  ``2 P1 - 1``, where ``P1`` is the power of one one-sided test of a shift of ``delta``; we
  need ``P1 >= (1 + power) / 2``.
- difference: the interval excludes 0, i.e. a two-sided paired t-test at ``alpha`` detects a
  true difference of ``delta``.

Both figures come from statsmodels' ``TTestPower`` (the paired t-test is a one-sample t-test of
the per-seed differences).
"""

from __future__ import annotations

import math

from statsmodels.stats.power import TTestPower

MAX_SEEDS = 100_000


def family_alpha(alpha: float, family: int) -> float:
    """The level each comparison is planned at: ``alpha / family`` (Bonferroni).

    Holm's first step tests the smallest p-value at exactly this level and its later steps
    are laxer, so a comparison planned here has its power whatever its rank in the family.
    """
    return alpha / max(int(family), 1)


def _smallest_n(effect: float, alpha: float, power: float, alternative: str) -> float:
    """The smallest integer n >= 2 whose t-test power reaches ``power`` (inf beyond MAX_SEEDS)."""
    calc = TTestPower()

    def enough(n: int) -> bool:
        return calc.power(effect_size=effect, nobs=n, alpha=alpha, alternative=alternative) >= power

    if enough(2):
        return 2
    low, high = 2, 4
    while not enough(high):
        if high >= MAX_SEEDS:
            return math.inf
        low, high = high, min(2 * high, MAX_SEEDS)
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (low, mid) if enough(mid) else (mid, high)
    return high


def seeds_needed(sd_diff: float, delta: float, alpha: float, power: float) -> tuple[float, float]:
    """``(to show equivalence within +-delta, to detect a difference of delta)`` in paired seeds.

    ``alpha`` is the two-sided level of the decision interval (family-adjusted); ``sd_diff``
    the sd of the per-seed differences on the scale the margin ``delta`` lives on. NaN when
    the sd is unknown or 0 (no variation: nothing to plan from).
    """
    if not math.isfinite(sd_diff) or sd_diff <= 0:
        return math.nan, math.nan
    effect = delta / sd_diff
    return (
        _smallest_n(effect, alpha / 2, (1 + power) / 2, "larger"),
        _smallest_n(effect, alpha, power, "two-sided"),
    )
