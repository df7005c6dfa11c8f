"""Model facts that need no framework: names, parameter-count thresholds, variants.

Both arms build from this registry (``frameworks/<name>/models.py``); configs are validated
against it without importing torch or tensorflow.
"""

from __future__ import annotations

from dataclasses import dataclass

from fwbench.errors import FwbenchError
from fwbench.frameworks.arms import FRAMEWORKS  # noqa: F401  (the arm registry, re-exported)


@dataclass(frozen=True)
class ModelInfo:
    """One model the comparison covers."""

    name: str
    display: str
    param_diff_threshold_pct: float  # the seed's limit on |PyTorch - Keras| trainable params
    threshold_inclusive: bool  # MobileNetV2's 0% is "<= 0"; the others are strict "<"


MODELS: dict[str, ModelInfo] = {
    m.name: m
    for m in (
        ModelInfo("mobilenetv2", "MobileNetV2", 0.0, True),
        ModelInfo("resnet50", "ResNet-50", 1.0, False),
        ModelInfo("convnext_tiny", "ConvNeXt-Tiny", 5.0, False),
    )
}

PRECISIONS = ("fp32", "amp")
VARIANTS = ("library", "matched")


def get_model(name: str) -> ModelInfo:
    """The registry entry for ``name``; an unknown name is a user error listing the known ones."""
    try:
        return MODELS[name]
    except KeyError:
        raise FwbenchError(
            f"unknown model '{name}'; known: {', '.join(MODELS)}",
            fix="use one of the known model names",
        ) from None


def check_choice(kind: str, value: str, known: tuple[str, ...]) -> str:
    """Return ``value`` if it is one of ``known``; else a user error naming the choices."""
    if value not in known:
        raise FwbenchError(
            f"unknown {kind} '{value}'; known: {', '.join(known)}",
            fix=f"use one of the known {kind} names",
        )
    return value
