"""Model facts that need no framework: names, parameter-count thresholds, variants.

Both arms build from this registry (``frameworks/<name>/models.py``); configs are validated
against it without importing torch or tensorflow.
"""

from __future__ import annotations

from dataclasses import dataclass

from fwbench.core.errors import FwbenchError
from fwbench.registry.arms import FRAMEWORKS  # noqa: F401  (the arm registry, re-exported)


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
# Where a run's initial weights come from. ``own``: its framework's initialisers (the only
# choice for ``library`` builds, whose layers differ). ``shared`` (the ``matched`` default): the
# PyTorch arm's initial weights for the run's seed, rebuilt in the run's own process and
# transferred; a PyTorch arm's own init *is* the shared one.
INITS = ("own", "shared")
# Innocuous changes that measure the instability floor (one framework, two runs that should
# compute the same thing): name -> what it changes. PyTorch arm only.
PERTURBATIONS = {"layout": "PyTorch memory layout toggled (training.channels_last on <-> off)"}


def default_init(framework: str, variant: str, init: str | None = None) -> str:
    """The init a run uses: ``own`` for library builds, ``shared`` for a matched PyTorch arm
    (its own init is the shared one), else ``init`` or ``shared`` for the matched variant.
    """
    if init is not None:
        check_choice("init", init, INITS)
    if variant != "matched":
        if init == "shared":
            raise FwbenchError(
                "init 'shared' needs the matched variant (library builds have other layers)",
                fix="use variant: matched, or init: own",
            )
        return "own"
    return "shared" if framework == "pytorch" else (init or "shared")


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
