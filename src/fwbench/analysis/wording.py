"""Numbers in their reading units, for tables, conclusions and the command line.

Fractions read in % (differences in percentage points, pp); relative differences of speed in %;
times in seconds; throughput in images/s. ``ascii_only`` gives the forms LaTeX tables use.
"""

from __future__ import annotations

import math

from fwbench.config.analysis import MarginConfig
from fwbench.registry.metric_info import METRICS

PLUS_MINUS = "±"
ARM_LABELS = {
    "pytorch": "PyTorch",
    "keras": "Keras",
    "keras-jax": "Keras-JAX",
    "keras-torch": "Keras-Torch",
}


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def _number(value: float, decimals: int, sign: str) -> str:
    """``value`` rounded, never ``-0.00`` (a difference that rounds to zero reads ``+0.00``)."""
    if round(value, decimals) == 0:
        value = 0.0
    return f"{value:{sign}.{decimals}f}"


def format_value(metric: str, value: float, signed: bool = False) -> str:
    """A metric value in its reading unit: fractions in % (pp for differences), time in s."""
    if not _finite(value):
        return "n/a"
    sign = "+" if signed else ""
    unit = METRICS[metric].unit
    if unit == "fraction":
        return f"{_number(value * 100, 2, sign)} {'pp' if signed else '%'}"
    if unit == "seconds":
        return f"{_number(value, 2, sign)} s"
    return f"{_number(value, 1, sign)} img/s"


def format_diff(metric: str, value: float, margin: MarginConfig) -> str:
    """A difference between arms: pp for fractions, % for relative margins, else the unit."""
    if margin.scale == "relative":
        return "n/a" if not _finite(value) else f"{_number(value * 100, 2, '+')} %"
    return format_value(metric, value, signed=True)


def format_margin(metric: str, margin: MarginConfig, ascii_only: bool = False) -> str:
    """The margin as ``±0.50 pp`` / ``±5 %`` (``+-`` when ``ascii_only``)."""
    pm = "+-" if ascii_only else PLUS_MINUS
    if margin.scale == "relative":
        return f"{pm}{margin.value * 100:g} %"
    if METRICS[metric].unit == "fraction":
        return f"{pm}{margin.value * 100:.2f} pp"
    return f"{pm}{format_value(metric, margin.value)}"


def format_ci(metric: str, low: float, high: float, margin: MarginConfig) -> str:
    """``[low, high]`` of a difference, or n/a."""
    if not (_finite(low) and _finite(high)):
        return "n/a"
    return f"[{format_diff(metric, low, margin)}, {format_diff(metric, high, margin)}]"


def format_p(value: float) -> str:
    """A p-value with three significant digits, or n/a."""
    return f"{value:.3g}" if _finite(value) else "n/a"


def arm_label(name: str) -> str:
    """How an arm is named in prose: ``PyTorch``, ``Keras``, ``Keras-JAX`` ..."""
    return ARM_LABELS.get(name, name)


def format_level(level: float) -> str:
    """A confidence level: ``95 %``, ``99.6 %`` (one decimal where it is not whole)."""
    if not _finite(level):
        return "n/a"
    for decimals in (1, 2, 3, 4):
        text = f"{level * 100:.{decimals}f}"
        if float(text) < 100:
            break
    return text.rstrip("0").rstrip(".") + " %"
