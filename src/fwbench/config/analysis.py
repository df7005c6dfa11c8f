"""``analysis.yaml``: margins, alpha, power and the minimum seeds of `fwbench analyze`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from fwbench.config.train import Strict, _load

ANALYSIS = "analysis.yaml"
Fraction = Annotated[float, Field(gt=0, lt=1)]


class MarginConfig(Strict):
    """An equivalence margin: +-``value`` in the metric's unit, or a +-``value`` ratio."""

    value: Annotated[float, Field(gt=0)]
    scale: Literal["absolute", "relative"] = "absolute"

    @model_validator(mode="after")
    def _relative_below_one(self) -> MarginConfig:
        if self.scale == "relative" and self.value >= 1:
            raise ValueError("a relative margin must be below 1 (0.05 = 5%)")
        return self


class AnalysisConfig(Strict):
    """``analysis.yaml``: test levels, seeds floor, reference arm and equivalence margins."""

    alpha: Annotated[float, Field(gt=0, lt=0.5)] = 0.05
    confidence: Fraction = 0.95
    power: Fraction = 0.8
    min_seeds: Annotated[int, Field(ge=2)] = 3
    bootstrap_resamples: Annotated[int, Field(ge=999)] = 9999
    bootstrap_min_pairs: Annotated[int, Field(ge=5)] = 20
    random_state: int = 0
    reference: str = "pytorch"
    margins: dict[str, MarginConfig]

    @field_validator("margins")
    @classmethod
    def _every_metric(cls, v: dict[str, MarginConfig]) -> dict[str, MarginConfig]:
        from fwbench.registry.metric_info import METRICS

        unknown = [k for k in v if k not in METRICS]
        if unknown:
            raise ValueError(f"unknown metric '{unknown[0]}'; known: {', '.join(METRICS)}")
        missing = [k for k in METRICS if k not in v]
        if missing:
            raise ValueError(f"no margin for metric '{missing[0]}'")
        return v


def load_analysis_config(path: str | Path | None = None) -> AnalysisConfig:
    """The analysis config: package defaults, with ``path`` merged over them if given."""
    return _load(ANALYSIS, AnalysisConfig, None if path is None else Path(path), None)
