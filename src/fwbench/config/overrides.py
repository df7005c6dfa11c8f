"""Command-line overrides of the train config: ``--set key.path=value`` and its shortcuts.

A value is read as YAML (``0.05`` is a number, ``true`` a bool, ``[1, 2]`` a list), turned into a
partial train config and merged over the resolved one, then validated by the same schema and
with the same messages as ``train_config.yaml`` itself. The strings as given are recorded in the
run's ``spec.json`` (``overrides``); their effect is in its settings and hash.
"""

from __future__ import annotations

import difflib
import itertools
import re
from typing import Any

import yaml

from fwbench.config.train import TrainConfig
from fwbench.core.errors import FwbenchError
from fwbench.core.strict_yaml import parse_yaml

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
        value = parse_yaml(raw) if raw.strip() else None  # the config files' own strict rules
    except yaml.YAMLError:
        value = raw  # an unparsable value stays a string; the schema judges it
    return path, value


def nested(pairs: list[tuple[list[str], Any]]) -> dict[str, Any]:
    """Key paths and values -> one nested mapping; a key given twice with two values (``--set
    training.batch_size=abc --batch-size 16``) is a user error, so every value given is judged."""
    out: dict[str, Any] = {}
    given: dict[tuple[str, ...], Any] = {}
    for path, value in pairs:
        key = tuple(path)
        if key in given and given[key] != value:
            raise FwbenchError(
                f"{'.'.join(path)} is set twice, to {given[key]!r} and to {value!r}",
                fix="give each key once (a shortcut like --batch-size sets it too)",
            )
        given[key] = value
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
    try:
        return config.merged(nested([parse_set(s) for s in sets]), source)
    except FwbenchError as e:
        raise _with_suggestion(e, config) from None


def known_keys(config: TrainConfig) -> list[str]:
    """Every dotted key of ``config`` (sections and leaves): what ``--set`` can name."""

    def walk(node: Any, prefix: str) -> list[str]:
        if not isinstance(node, dict):
            return []
        keys = []
        for k, v in node.items():
            keys += [f"{prefix}{k}", *walk(v, f"{prefix}{k}.")]
        return keys

    return walk(config.model_dump(mode="json"), "")


def _with_suggestion(e: FwbenchError, config: TrainConfig) -> FwbenchError:
    """``e`` with "did you mean 'lr.base_lr'?" when it names an unknown key close to a known one."""
    found = re.search(r"invalid config key '([^']+)': unknown key", e.what)
    close = difflib.get_close_matches(found[1], known_keys(config), n=1) if found else []
    if not close:
        return e
    what = e.what.replace(": unknown key", f": unknown key (did you mean '{close[0]}'?)", 1)
    return FwbenchError(what, path=e.path, fix=e.fix)


def shortcut_sets(**values: Any) -> list[str]:
    """``--batch-size 64 --lr 0.05`` as ``--set`` strings (unset shortcuts are left out)."""
    return [f"{SHORTCUTS[k]}={v}" for k, v in values.items() if v is not None]


def set_key(text: str) -> str:
    """The dotted key a ``--set`` string names (``"lr.base_lr=0.05"`` -> ``"lr.base_lr"``)."""
    return ".".join(parse_set(text)[0])


def overlaps(a: str, b: str) -> bool:
    """Whether dotted keys ``a`` and ``b`` name the same setting (or one holds the other)."""
    return a == b or a.startswith(b + ".") or b.startswith(a + ".")


def combine_sets(sets: list[str] | None, **shortcuts: Any) -> list[str]:
    """``--set`` strings followed by the shortcuts' (``--lr``, ``--batch-size``).

    A shortcut and a ``--set`` that name the same key are refused: neither silently wins.
    """
    given = list(sets or [])
    short = shortcut_sets(**shortcuts)
    for text in short:
        key = set_key(text)
        clash = next((s for s in given if overlaps(set_key(s), key)), None)
        if clash is not None:
            flag = "--" + next(k for k, v in SHORTCUTS.items() if v == key).replace("_", "-")
            raise FwbenchError(
                f"--set {clash} and {flag} both set {key}",
                fix=f"pass one of them (--set and {flag} are the same setting)",
            )
    return [*given, *short]


def refuse_swept(stage_name: str, sweep: dict[str, list[Any]], sets: tuple[str, ...]) -> None:
    """An override of a key the stage sweeps is a user error: it would collapse the sweep
    (every value the same run). Selecting sweep values is ``--only key=value``'s job."""
    for text in sets:
        key = set_key(text)
        for swept, values in sweep.items():
            if overlaps(key, swept):
                shown = ", ".join(_yaml_text(v) for v in values)
                raise FwbenchError(
                    f"--set {text.split('  #')[0]} overrides {swept}, which stage "
                    f"'{stage_name}' sweeps ({shown})",
                    fix=f"pick sweep values with --only {swept}=VALUE, or drop the override",
                )


def setting_value(config: TrainConfig, key: str) -> Any:
    """The value of dotted ``key`` in ``config`` (``"lr.base_lr"`` -> ``0.05``)."""
    node: Any = config.model_dump(mode="json")
    for part in key.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def value_text(value: Any) -> str:
    """A setting's value as YAML flow text, the way labels and filters write it."""
    return _yaml_text(value)


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
