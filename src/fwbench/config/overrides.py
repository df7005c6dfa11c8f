"""Command-line overrides of the train config: ``--set key.path=value`` and its shortcuts.

A value is read as YAML (``0.05`` is a number, ``true`` a bool, ``[1, 2]`` a list), turned into a
partial train config and merged over the resolved one, then validated by the same schema and
with the same messages as ``train_config.yaml`` itself. The strings as given are recorded in the
run's ``spec.json`` (``overrides``); their effect is in its settings and hash.
"""

from __future__ import annotations

import itertools
from typing import Any

import yaml

from fwbench.config.train import TrainConfig
from fwbench.core.errors import FwbenchError

# Everyday shortcuts: flag name -> the key it sets.
SHORTCUTS: dict[str, str] = {"batch_size": "training.batch_size", "lr": "lr.base_lr"}


def parse_set(text: str) -> tuple[list[str], Any]:
    """``"lr.base_lr=0.05"`` -> ``(["lr", "base_lr"], 0.05)``; a malformed pair is a user error."""
    key, sep, raw = text.partition("=")
    path = [p.strip() for p in key.split(".")]
    if not sep or not all(path):
        raise FwbenchError(
            f"bad --set '{text}'", fix="write --set key.path=value, e.g. --set lr.base_lr=0.05"
        )
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw  # an unparsable value stays a string; the schema judges it
    return path, value


def nested(pairs: list[tuple[list[str], Any]]) -> dict[str, Any]:
    """Key paths and values -> one nested mapping (later pairs win)."""
    out: dict[str, Any] = {}
    for path, value in pairs:
        node = out
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise FwbenchError(
                    f"--set gives '{part}' a value and sub-keys", fix="set one or the other"
                )
        node[path[-1]] = value
    return out


def apply_sets(config: TrainConfig, sets: list[str] | tuple[str, ...]) -> TrainConfig:
    """``config`` with every ``--set`` applied, validated like ``train_config.yaml``."""
    if not sets:
        return config
    source = "--set " + " ".join(sets)
    return config.merged(nested([parse_set(s) for s in sets]), source)


def shortcut_sets(**values: Any) -> list[str]:
    """``--batch-size 64 --lr 0.05`` as ``--set`` strings (unset shortcuts are left out)."""
    return [f"{SHORTCUTS[k]}={v}" for k, v in values.items() if v is not None]


def sweep_sets(sweep: dict[str, list[Any]]) -> list[list[str]]:
    """Every combination of a stage's ``sweep`` axes as ``--set`` strings (one empty list if none).

    Values are written back as YAML flow text so that ``parse_set`` reads the same value.
    """
    keys = list(sweep)
    combos = itertools.product(*(sweep[k] for k in keys))
    return [[f"{k}={_yaml_text(v)}" for k, v in zip(keys, combo, strict=True)] for combo in combos]


def _yaml_text(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


FITTED = "fitted to --subset"


def fit_batch_to_subset(config: TrainConfig, subset: int | None) -> tuple[TrainConfig, str | None]:
    """Shrink the batch when ``--subset N`` holds fewer training images than one optimizer step.

    Returns the config to use and the ``--set`` that did it (None when nothing changed), with a
    YAML comment saying why (``training.batch_size=50  # fitted to --subset 50 (was 256)``): one
    step then covers the whole subset, so a smoke run trains instead of failing on zero steps.
    """
    t = config.training
    if subset is None or subset >= t.batch_size * t.gradient_accumulation_steps:
        return config, None
    new = max(1, subset // t.gradient_accumulation_steps)
    fitted = f"training.batch_size={new}  # {FITTED} {subset} (was {t.batch_size})"
    return apply_sets(config, [fitted]), fitted


def fit_notice(fitted: str) -> str:
    """The one line that tells a user their batch was shrunk, and how to choose another."""
    new = parse_set(fitted)[1]
    subset, _, was = fitted.partition(FITTED)[2].strip().partition(" (was ")
    return (
        f"note: --subset {subset} is smaller than one batch ({was.rstrip(')')}); training with "
        f"batch size {new} (pass --batch-size to choose another)"
    )
