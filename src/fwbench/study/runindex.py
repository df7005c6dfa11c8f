"""Every run directory of a workspace, however it was started (a matrix stage, ``run --set``,
``train``), with its state and settings label: what ``fwbench runs`` and ``fwbench status`` list.

Read from the run directories only; no pandas (``fwbench status`` must start fast).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fwbench.config.overrides import known_keys, setting_value, value_text
from fwbench.core.errors import FwbenchError
from fwbench.core.paths import Workspace
from fwbench.record.check import QUARANTINE
from fwbench.record.runs import RunDir, RunSpec, identity_fields
from fwbench.study.matrix import AXES, load_configs, named, run_state, settings_label, yaml_value

# Spec fields a filter may name besides the AXES and dotted train-config keys.
SPEC_KEYS = ("stage", "variant", "init", "perturbation", "epochs", "subset", "eval_subset")


def find_run_dirs(runs_root: Path) -> list[RunDir]:
    """Every run directory (a folder holding ``spec.json``) under ``runs_root``, sorted."""
    if not runs_root.is_dir():
        return []
    skip = {"checkpoints", QUARANTINE}
    found = (p.parent for p in runs_root.rglob("spec.json") if not skip & set(p.parts))
    return [RunDir(p) for p in sorted(found)]


@dataclass(frozen=True)
class Found:
    """One run directory on disk: its spec (None when ``spec.json`` is unreadable) and label."""

    run_dir: RunDir
    spec: RunSpec | None
    label: str = ""

    @property
    def run_id(self) -> str:
        return self.run_dir.run_id

    @property
    def name(self) -> str:
        return named(self.run_id, self.label)

    @property
    def state(self) -> str:
        return "corrupt" if self.spec is None else run_state(self.run_dir)


def stage_sweeps(ws: Workspace) -> dict[str, list[str]]:
    """``{stage: its swept keys}`` from the workspace's matrix (empty if it cannot be read)."""
    try:
        _, matrix = load_configs(ws)
    except FwbenchError:
        return {}
    return {name: list(stage.sweep) for name, stage in matrix.stages.items()}


def flat_settings(spec: RunSpec) -> dict[str, Any]:
    """Everything that can change a run's numbers, as dotted keys (``lr.base_lr``)."""
    fields = identity_fields(spec)
    config = fields.pop("train_config")
    out: dict[str, Any] = {}

    def walk(node: dict[str, Any], prefix: str) -> None:
        for k, v in node.items():
            if isinstance(v, dict):
                walk(v, f"{prefix}{k}.")
            else:
                out[f"{prefix}{k}"] = v

    walk(fields, "")
    walk(config, "")
    return out


def _differing(specs: list[RunSpec]) -> list[str]:
    """The train-config keys whose values differ between ``specs`` (a stage the matrix no
    longer defines: its sweep is read from its runs)."""
    flats = [flat_settings(s) for s in specs]
    keys = sorted({k for f in flats for k in f})
    config_keys = [k for k in keys if "." in k and not k.startswith(("epochs.", "input_size."))]
    return [k for k in config_keys if len({repr(f.get(k)) for f in flats}) > 1]


def found_runs(ws: Workspace) -> list[Found]:
    """Every run directory under ``runs/``, labelled with its stage's swept keys (the matrix's,
    or for a stage it does not define, the keys its runs differ in) and its command-line
    overrides (``lr.base_lr=0.2``)."""
    sweeps = stage_sweeps(ws)
    read: list[tuple[RunDir, RunSpec | None]] = []
    for rd in find_run_dirs(ws.runs_dir):
        try:
            read.append((rd, rd.read_spec()))
        except FwbenchError:
            read.append((rd, None))
    for name in {s.stage for _, s in read if s is not None and s.stage} - set(sweeps):
        sweeps[name] = _differing([s for _, s in read if s is not None and s.stage == name])
    return [
        Found(rd, spec, settings_label(spec, sweeps.get(spec.stage or "", [])))
        if spec is not None
        else Found(rd, None)
        for rd, spec in read
    ]


def orphans(ws: Workspace) -> list[Path]:
    """Folders directly under ``runs/`` that hold no ``spec.json``: a launch that never wrote
    its spec, or what a crash left; no command reads them."""
    if not ws.runs_dir.is_dir():
        return []
    return sorted(
        p
        for p in ws.runs_dir.iterdir()
        if p.is_dir() and p.name != QUARANTINE and not any(p.rglob("spec.json"))
    )


def spec_value(spec: RunSpec, key: str) -> str | None:
    """A run's value of ``key`` as filters compare it (an axis, a spec field, or a dotted
    train-config key), or None where the run has no such key."""
    if key in AXES or key in SPEC_KEYS:
        value = getattr(spec, key)
        return None if value is None else str(value)
    value = setting_value(spec.train_config, key)
    return None if value is None else value_text(value)


def parse_where(pairs: list[str], specs: list[RunSpec]) -> dict[str, set[str]]:
    """``["model=resnet50|mobilenetv2", "lr.base_lr=0.2"]`` -> ``{key: allowed values}``; a key
    no run has is a user error with the closest known key."""
    filters: dict[str, set[str]] = {}
    known = [*AXES, *SPEC_KEYS, *(known_keys(specs[0].train_config) if specs else [])]
    for pair in pairs:
        key, sep, values = pair.partition("=")
        key = key.strip()
        if not sep or not key or not values.strip():
            raise FwbenchError(f"bad filter '{pair}'", fix="write KEY=VALUE[|VALUE]")
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise FwbenchError(
                f"unknown setting '{key}'{hint}",
                fix="name an axis (model, seed, ...) or a train-config key like lr.base_lr",
            )
        names = {v.strip() for v in values.split("|")}
        if key not in AXES and key not in SPEC_KEYS:
            names = {value_text(yaml_value(v)) for v in names}
        filters.setdefault(key, set()).update(names)
    return filters


def matches(spec: RunSpec, filters: dict[str, set[str]]) -> bool:
    """Whether ``spec`` has one of the allowed values for every filtered key."""
    return all(spec_value(spec, k) in v for k, v in filters.items())


def resolve(ws: Workspace, text: str) -> Found:
    """The run named by ``text``: a run id, a unique part of one, or a run directory path."""
    path = Path(text)
    if (path / "spec.json").is_file():
        rd = RunDir(path)
        try:
            return Found(rd, rd.read_spec())
        except FwbenchError:
            return Found(rd, None)
    runs = found_runs(ws)
    exact = [r for r in runs if r.run_id == text]
    hits = exact or [r for r in runs if text in r.run_id]
    if len(hits) == 1:
        return hits[0]
    if not hits:
        raise FwbenchError(
            f"no run '{text}' in {ws.runs_dir}",
            fix="list the runs with `fwbench runs ls` and pass an id (or a unique part of one)",
        )
    shown = ", ".join(r.run_id for r in hits[:3]) + (" ..." if len(hits) > 3 else "")
    raise FwbenchError(
        f"'{text}' matches {len(hits)} runs ({shown})", fix="pass more of the run id"
    )
