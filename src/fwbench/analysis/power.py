"""Seeds needed: how many paired seeds decide a comparison against its margin, at a given power.

Both figures come from statsmodels' ``TTestPower`` (the paired t-test is a one-sample t-test of
the per-seed differences):

- equivalence: TOST rejects both one-sided nulls. If the true difference is 0, its power is at
  least ``2 P1 - 1``, where ``P1`` is the power of one one-sided test of a shift of ``delta``;
  we need ``P1 >= (1 + power) / 2``.
- difference: a two-sided paired t-test detects a true difference of ``delta``.
"""

from __future__ import annotations

import math

from statsmodels.stats.power import TTestPower

MAX_SEEDS = 100_000


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

    ``sd_diff`` is the sd of the per-seed differences on the scale the margin ``delta`` lives
    on. NaN when the sd is unknown; 2 when it is 0 (two seeds already decide).
    """
    if not math.isfinite(sd_diff):
        return math.nan, math.nan
    if sd_diff == 0:
        return 2, 2
    effect = delta / sd_diff
    return (
        _smallest_n(effect, alpha, (1 + power) / 2, "larger"),
        _smallest_n(effect, alpha, power, "two-sided"),
    )
