"""Stages -> RunSpecs, ``--only`` filters, and the state of each run read from its directory.

A stage is the cross product of its lists; each combination is one RunSpec with the stage's
train-config overrides, epochs override, subset and variant applied. What has happened to a run
is read from its run directory only (``status.json``), so the local and Slurm executors and
``fwbench status`` all see the same thing.
"""

from __future__ import annotations

import difflib
import itertools
import os
import socket
from dataclasses import dataclass
from pathlib import Path

import yaml

from fwbench.config.experiment_matrix import EXPERIMENT_MATRIX, ExperimentMatrix, Stage, load_matrix
from fwbench.config.overrides import (
    FITTED,
    apply_sets,
    fit_batch_to_subset,
    refuse_swept,
    set_key,
    setting_value,
    sweep_sets,
    value_text,
)
from fwbench.config.train import TrainConfig, find_user_config, workspace_train_config
from fwbench.core.errors import FwbenchError
from fwbench.core.paths import Workspace
from fwbench.record.check import corruption
from fwbench.record.runs import RunDir, RunSpec, make_spec, run_dir_for
from fwbench.registry.arms import canonical

# The axes a filter may name, in run-id order: RunSpec field -> Stage list.
AXES: dict[str, str] = {
    "dataset": "datasets",
    "model": "models",
    "precision": "precisions",
    "seed": "seeds",
    "framework": "frameworks",
    "compile": "compile",
}

# What `fwbench status` counts. "interrupted" is a `running` run whose process is gone: the next
# `fwbench run` resumes it from its last checkpoint.
# "corrupt" is a run that says it is done but whose files are not whole (fwbench.record.check): the
# next `fwbench run` repairs it from its checkpoints.
VIEW_STATES: tuple[str, ...] = (
    "done",
    "running",
    "interrupted",
    "failed",
    "diverged",
    "corrupt",
    "pending",
)
FINISHED = ("done",)
UNSUCCESSFUL = ("failed", "diverged")


@dataclass(frozen=True)
class SmokeOptions:
    """Per-invocation stage overrides: ``--epochs``, ``--subset``, ``--num-workers``, ``--set``."""

    epochs_override: int | None = None
    subset: int | None = None
    num_workers: int | None = None
    eval_subset: int | None = None
    sets: tuple[str, ...] = ()


def load_configs(
    ws: Workspace, config: str | Path | None = None, matrix: str | Path | None = None
) -> tuple[TrainConfig, ExperimentMatrix]:
    """The train config and experiment matrix: package defaults, the user's files merged over."""
    train = workspace_train_config(ws, config)
    stages = load_matrix(find_user_config(ws.configs_dir, EXPERIMENT_MATRIX, matrix))
    return train, stages


def expand_stage(
    name: str, stage: Stage, base: TrainConfig, smoke: SmokeOptions = SmokeOptions()
) -> list[RunSpec]:
    """Every RunSpec of ``stage``, in a stable order (sweep, dataset, model, precision, seed,
    framework).

    Command-line options win over the stage's own ``epochs_override``, ``subset`` and
    ``overrides``; a ``--set`` of a key the stage sweeps is refused (it would make every sweep
    value the same run: choose values with ``--only key=value``). A run is listed once even if
    two combinations resolve to the same settings. An attribution stage (``rungs``) expands to
    the arms its rungs compare (``Stage.arms``).
    """
    refuse_swept(name, stage.sweep, smoke.sets)
    staged = stage.train_config(base, source=f"{EXPERIMENT_MATRIX} stage '{name}' overrides")
    subset = smoke.subset or stage.subset
    specs, seen = [], set()
    for swept in sweep_sets(stage.sweep):
        train, fitted = fit_batch_to_subset(apply_sets(staged, [*swept, *smoke.sets]), subset)
        axes = [stage_axis(stage, k, train) for k in AXES if k != "framework"]
        axes.insert(4, stage.arms())  # frameworks, or an attribution stage's arms
        for dataset, model, precision, seed, arm, compile_mode in itertools.product(*axes):
            framework, variant, init, perturbation = arm
            spec = make_spec(
                train,
                dataset=dataset,
                model=model,
                precision=precision,
                seed=seed,
                framework=framework,
                variant=variant,
                init=init,
                perturbation=perturbation,
                epochs_override=smoke.epochs_override or stage.epochs_override,
                subset=subset,
                eval_subset=smoke.eval_subset or stage.eval_subset,
                num_workers=smoke.num_workers,
                stage=name,
                compile_mode=compile_mode,
                overrides=[*smoke.sets, *([fitted] if fitted else [])],
            )
            if spec.run_id not in seen:
                seen.add(spec.run_id)
                specs.append(spec)
    return specs


def settings_label(spec: RunSpec, swept: list[str] | tuple[str, ...] = ()) -> str:
    """What sets this run apart besides its id's axes: the stage's swept keys and the
    command-line ``--set`` values (``lr.base_lr=0.2``); empty for a plain run."""
    parts = [f"{k}={value_text(setting_value(spec.train_config, k))}" for k in swept]
    for text in spec.overrides:
        if FITTED in text or text.startswith(("tracking", "epochs=")):
            continue
        key = set_key(text)
        if key not in swept:
            parts.append(f"{key}={value_text(setting_value(spec.train_config, key))}")
    return ", ".join(parts)


def named(run_id: str, label: str) -> str:
    """A run as lines show it: ``<run id> [lr.base_lr=0.2]`` (the id alone without settings)."""
    return f"{run_id} [{label}]" if label else run_id


def stage_axis(stage: Stage, key: str, train: TrainConfig) -> list:
    """The values of axis ``key`` in ``stage`` (compile: the train config's mode if not listed)."""
    values = getattr(stage, AXES[key])
    if key == "compile" and values is None:
        return [train.training.compile]
    return values


def parse_filters(only: list[str], stage: Stage | None = None) -> dict[str, set[str]]:
    """``["dataset=cifar10,model=resnet50|mobilenetv2", ...]`` -> ``{axis: allowed values}``.

    Keys are ANDed, values of one key (``|`` or repeated) are ORed. Besides the axes, any key the
    stage sweeps is a filter (``lr.base_lr=0.2``). Unknown keys, and values the stage does not
    contain, are user errors (a typo would otherwise select nothing silently).
    """
    swept = dict(stage.sweep) if stage is not None else {}
    filters: dict[str, set[str]] = {}
    for text in only:
        for part in filter(None, (p.strip() for p in text.split(","))):
            key, sep, values = part.partition("=")
            key = key.strip()
            if not sep or not values.strip():
                raise FwbenchError(
                    f"bad filter '{part}'", fix="write --only key=value[|value],key=value"
                )
            if key not in AXES and key not in swept:
                known = ", ".join([*AXES, *swept])
                raise FwbenchError(
                    f"unknown filter key '{key}'{_suggest(key, [*AXES, *swept])}; known: {known}",
                    fix="filter on one of the known keys",
                )
            names = (v.strip() for v in values.split("|"))
            if key == "framework":
                names = (canonical(v) for v in names)
            if key in swept:
                names = (value_text(yaml_value(v)) for v in names)
            filters.setdefault(key, set()).update(names)
    if stage is not None:
        for key, values in filters.items():
            if key in swept:
                known = [value_text(v) for v in swept[key]]
                missing = sorted(values - set(known))
                if missing:
                    raise FwbenchError(
                        f"the stage sweeps no {key} '{missing[0]}'; its values: {', '.join(known)}",
                        fix="check the --only values against `fwbench config show`",
                    )
                continue
            known = [str(v) for v in getattr(stage, AXES[key]) or ("eager", "compiled")]
            missing = sorted(values - set(known))
            if missing:
                raise FwbenchError(
                    f"the stage has no {key} '{missing[0]}'; its {AXES[key]}: {', '.join(known)}",
                    fix="check the --only values against `fwbench config show`",
                )
    return filters


def yaml_value(text: str) -> object:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _suggest(word: str, known: list[str]) -> str:
    close = difflib.get_close_matches(word, known, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _value(spec: RunSpec, key: str) -> str:
    if key in AXES:
        return str(getattr(spec, key))
    return value_text(setting_value(spec.train_config, key))


def select(specs: list[RunSpec], filters: dict[str, set[str]]) -> list[RunSpec]:
    """The specs whose every filtered axis (or swept key) has one of the allowed values."""
    return [s for s in specs if all(_value(s, k) in v for k, v in filters.items())]


def pid_alive(pid: int) -> bool:
    """Whether a process with ``pid`` exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def run_state(run_dir: RunDir) -> str:
    """The run's state as the executors and ``fwbench status`` see it (one of VIEW_STATES).

    ``running`` is trusted only while its process lives: on this host the pid is checked; a run
    whose runner stopped it (no pid), or whose pid is dead, is ``interrupted`` (resumable).
    Runs on other hosts (Slurm nodes) are taken at their word; the Slurm executor fixes those
    whose job ended without the run writing its final state.
    """
    status = run_dir.read_status()
    state = status.get("state", "pending")
    if corruption(run_dir, state):
        return "corrupt"
    if state not in VIEW_STATES:
        return "pending"
    if state != "running":
        return state
    pid = status.get("pid")
    if not pid:  # its runner stopped it (executors.base.mark_interrupted)
        return "interrupted"
    if status.get("host") == socket.gethostname() and not pid_alive(int(pid)):
        return "interrupted"
    return "running"


def error_line(run_dir: RunDir) -> str:
    """The one line that says why a run failed: the last non-empty line of its recorded error."""
    status = run_dir.read_status()
    damage = corruption(run_dir)
    if damage:
        return f"{damage}; `fwbench run` repairs it"
    text = str(status.get("error") or "")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if lines:
        return lines[-1][:300]
    if run_state(run_dir) == "interrupted":
        why = status.get("stopped_by") or "stopped before its end"
        return f"{why}; the next `fwbench run` resumes it from its last checkpoint"
    return "diverged" if status.get("state") == "diverged" else "no error recorded"


@dataclass(frozen=True)
class PlannedRun:
    """One run of a stage: its spec and its directory."""

    spec: RunSpec
    run_dir: RunDir
    label: str = ""  # settings_label: the swept and --set values that set the run apart

    @property
    def run_id(self) -> str:
        return self.spec.run_id

    @property
    def name(self) -> str:
        """``<run id> [lr.base_lr=0.2]``: the id and, when there are any, its settings."""
        return named(self.spec.run_id, self.label)

    @property
    def state(self) -> str:
        """The current state, read from the run directory each time."""
        return run_state(self.run_dir)


def plan(
    ws: Workspace,
    stage_name: str,
    *,
    config: str | Path | None = None,
    matrix: str | Path | None = None,
    only: list[str] | None = None,
    smoke: SmokeOptions = SmokeOptions(),
) -> list[PlannedRun]:
    """The runs of ``stage_name`` after filters, each with its run directory under ``runs/``."""
    train, stages = load_configs(ws, config, matrix)
    stage = stages.stage(stage_name)
    specs = select(expand_stage(stage_name, stage, train, smoke), parse_filters(only or [], stage))
    swept = list(stage.sweep)
    return [PlannedRun(s, run_dir_for(ws.runs_dir, s), settings_label(s, swept)) for s in specs]


def stage_runs(
    ws: Workspace,
    names: list[str],
    *,
    config: str | Path | None = None,
    matrix: str | Path | None = None,
) -> dict[str, list[RunSpec]]:
    """Each named stage's runs, as the matrix expects them: which runs belong to a stage for
    ``collect``, ``analyze`` and ``report --stage`` (``status --stage`` lists ``plan``'s, the
    same expansion). A run two stages share is in both lists; an unknown name is a user error
    naming the known stages."""
    train, stages = load_configs(ws, config, matrix)
    return {name: expand_stage(name, stages.stage(name), train) for name in dict.fromkeys(names)}


def spec_conflict(run: PlannedRun) -> bool:
    """Whether the run directory already holds a spec with other settings (a changed config)."""
    if not run.run_dir.spec_path.exists():
        return False
    try:
        return run.run_dir.read_spec().config_hash != run.spec.config_hash
    except FwbenchError:  # unreadable spec.json: a corrupt run, repaired by `fwbench run`
        return False


def to_launch(runs: list[PlannedRun], retry_failed: bool) -> list[PlannedRun]:
    """The runs an executor should start: not done, not live, and failed ones only on retry."""
    skip = {"done", "running"} | (set() if retry_failed else set(UNSUCCESSFUL))
    return [r for r in runs if r.state not in skip]


def count_states(runs: list[PlannedRun]) -> dict[str, int]:
    """``{state: number of runs}`` over VIEW_STATES (zeros included)."""
    counts = dict.fromkeys(VIEW_STATES, 0)
    for r in runs:
        counts[r.state] += 1
    return counts
