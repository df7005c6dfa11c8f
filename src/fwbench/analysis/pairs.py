"""Which arms a study has and which pairs of them the analysis compares.

Every arm other than the reference (PyTorch) is compared with it; the Keras arms (``keras`` on
TensorFlow, ``keras-jax``, ``keras-torch``) are also compared with each other, so that a gap
can be told apart as "Keras" or "Keras' backend".
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import combinations

from fwbench.registry.models import FRAMEWORKS

REFERENCE = "pytorch"
KERAS_PREFIX = "keras"


def arm_order(present: Iterable[str]) -> list[str]:
    """The arms in ``present`` in registry order (unknown names last, sorted)."""
    names = set(present)
    known = [f for f in FRAMEWORKS if f in names]
    return known + sorted(names - set(known))


def comparisons(present: Iterable[str], reference: str = REFERENCE) -> list[tuple[str, str]]:
    """``(a, b)`` pairs compared as ``a - b``: reference vs every other arm, Keras arms pairwise."""
    arms = arm_order(present)
    pairs = [(reference, arm) for arm in arms if reference in arms and arm != reference]
    keras = [arm for arm in arms if arm.startswith(KERAS_PREFIX)]
    return pairs + [p for p in combinations(keras, 2) if p not in pairs]


def comparison_label(a: str, b: str) -> str:
    """``pytorch - keras`` (ASCII, used in tables, file names stay separate)."""
    return f"{a} - {b}"
