"""The metrics the analysis compares: column, reading label, unit and bounds (no imports).

Kept free of fwbench imports so that ``config/analysis.py`` can validate ``analysis.yaml``
against it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MetricInfo:
    """One compared metric of the collected runs table."""

    column: str
    label: str
    unit: str  # "fraction" (bounded in [0, 1], read in % and pp), "seconds" or "rate"

    @property
    def bounds(self) -> tuple[float, float] | None:
        """The metric's range when it is bounded (a fraction), else None."""
        return (0.0, 1.0) if self.unit == "fraction" else None

    @property
    def range(self) -> tuple[float, float]:
        """Where the metric's values (and so their CIs) can lie: [0, 1], or never below 0."""
        return self.bounds or (0.0, float("inf"))


METRICS: dict[str, MetricInfo] = {
    m.column: m
    for m in (
        MetricInfo("test_accuracy", "test accuracy", "fraction"),
        MetricInfo("test_top5_accuracy", "test top-5 accuracy", "fraction"),
        MetricInfo("test_macro_f1", "test macro-F1", "fraction"),
        MetricInfo("test_ece", "test ECE", "fraction"),
        MetricInfo("epoch_time_s", "epoch time (s)", "seconds"),
        MetricInfo("images_per_second", "throughput (images/s)", "rate"),
    )
}
