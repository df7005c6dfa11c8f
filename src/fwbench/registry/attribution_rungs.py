"""The attribution ladder: which two arms each rung compares (framework-free).

For one (dataset, model, precision) cell, each rung removes one reason the PyTorch and Keras
arms could differ; the last rung is the instability floor, two runs of one framework that
should compute the same thing:

| rung | arm A | arm B | what is left between A and B |
|---|---|---|---|
| ``library`` | PyTorch library | Keras library | everything a user gets |
| ``matched-own`` | PyTorch matched | Keras matched, own init | frameworks + initialisers |
| ``matched-shared`` | PyTorch matched | Keras matched, shared init | frameworks only |
| ``floor`` | PyTorch matched | PyTorch matched, layout toggled | rounding + chaos only |

An ``Arm`` is ``(framework role, variant, init, perturbation)``; the role ``reference`` is the
stage's first framework (PyTorch: it is the source of the shared init and has the layout
switch), ``other`` its second.
"""

from __future__ import annotations

from typing import NamedTuple


class Arm(NamedTuple):
    """One kind of run in an attribution stage."""

    role: str  # "reference" (frameworks[0]) or "other" (frameworks[1])
    variant: str
    init: str | None  # None: the variant's default (models.default_init)
    perturbation: str | None = None


class Rung(NamedTuple):
    """One rung: arm ``a`` minus arm ``b``, and what differs between them."""

    name: str
    a: Arm
    b: Arm
    removes: str  # what this rung removes relative to the rung before it
    left: str  # what can still differ between its arms


_PT_LIBRARY = Arm("reference", "library", "own")
_PT_MATCHED = Arm("reference", "matched", None)

RUNGS: dict[str, Rung] = {
    r.name: r
    for r in (
        Rung(
            "library",
            _PT_LIBRARY,
            Arm("other", "library", "own"),
            "—",
            "architecture defaults, initialisers, framework",
        ),
        Rung(
            "matched-own",
            _PT_MATCHED,
            Arm("other", "matched", "own"),
            "architecture defaults",
            "initialisers, framework",
        ),
        Rung(
            "matched-shared",
            _PT_MATCHED,
            Arm("other", "matched", "shared"),
            "initialisation",
            "framework (kernels, rounding)",
        ),
        Rung(
            "floor",
            _PT_MATCHED,
            Arm("reference", "matched", None, "layout"),
            "the framework",
            "rounding and chaos only (instability floor)",
        ),
    )
}
LADDER = tuple(RUNGS)


def arms(rungs: list[str]) -> list[Arm]:
    """Every distinct arm the ``rungs`` need, in ladder order."""
    unknown = [r for r in rungs if r not in RUNGS]
    if unknown:
        raise ValueError(f"unknown rung '{unknown[0]}'; known: {', '.join(LADDER)}")
    return list(dict.fromkeys(arm for r in rungs for arm in (RUNGS[r].a, RUNGS[r].b)))
