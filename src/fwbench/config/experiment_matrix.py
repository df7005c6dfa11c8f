"""``experiment_matrix.yaml``: named stages, each the cross product of its lists.

The package's stages are read first; a user's file adds stages and replaces those of the same
name whole (a user's ``stage1`` is their ``stage1``, not a blend).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import field_validator, model_validator

from fwbench.config.train import Epochs, PositiveInt, Strict, TrainConfig, _load, check_seed
from fwbench.core.errors import FwbenchError
from fwbench.registry.arms import canonical
from fwbench.registry.attribution_rungs import RUNGS, arms
from fwbench.registry.datasets import DATASETS
from fwbench.registry.models import FRAMEWORKS, INITS, MODELS, PRECISIONS, VARIANTS

EXPERIMENT_MATRIX = "experiment_matrix.yaml"


class Stage(Strict):
    """One stage of the experiment matrix: the cross product of its lists."""

    description: str = ""
    datasets: list[str]
    models: list[str]
    precisions: list[str]
    seeds: list[int]
    frameworks: list[str]
    variant: str = "library"
    # Execution modes (an axis, like frameworks); None: the train config's training.compile.
    compile: list[Literal["eager", "compiled"]] | None = None
    # Initial weights of the Keras arms of a matched stage: "shared" (default: the PyTorch arm's
    # for the same seed) or "own" (each framework's initialisers). Library stages are "own".
    init: str | None = None
    # An attribution stage lists rungs (fwbench.registry.attribution_rungs: library, matched-own,
    # matched-shared,
    # floor) instead of one variant: it runs every arm those rungs compare, per seed.
    rungs: list[str] = []
    epochs_override: Epochs | None = None
    subset: PositiveInt | None = None  # training images per run (val and test stay whole)
    eval_subset: PositiveInt | None = None  # val/test images per run, only when asked for
    # A partial train_config merged over the resolved one for this stage's runs only
    # (e.g. the demo's smaller batch). Validated like train_config.yaml itself.
    overrides: dict[str, Any] = {}
    # Extra matrix axes over any train-config key: {"lr.base_lr": [0.05, 0.1]} doubles the runs.
    # Each combination is its own run (its own settings hash); the report shows the key as a column.
    sweep: dict[str, list[Any]] = {}

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: list[int]) -> list[int]:
        if not v:
            raise ValueError("at least one seed is needed")
        for seed in v:
            check_seed(seed)
        if len(set(v)) != len(v):
            dup = next(s for s in v if v.count(s) > 1)
            raise ValueError(f"seed {dup} is listed twice (each seed is one run per arm)")
        return v

    @field_validator("datasets")
    @classmethod
    def _datasets(cls, v: list[str]) -> list[str]:
        return _check_names(v, "dataset", tuple(DATASETS))

    @field_validator("models")
    @classmethod
    def _models(cls, v: list[str]) -> list[str]:
        return _check_names(v, "model", tuple(MODELS))

    @field_validator("precisions")
    @classmethod
    def _precisions(cls, v: list[str]) -> list[str]:
        return _check_names(v, "precision", PRECISIONS)

    @field_validator("frameworks")
    @classmethod
    def _frameworks(cls, v: list[str]) -> list[str]:
        return _check_names([canonical(f) for f in v], "framework", FRAMEWORKS)

    @field_validator("compile")
    @classmethod
    def _compile(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else _check_names(v, "compile mode", ("eager", "compiled"))

    @field_validator("sweep")
    @classmethod
    def _sweep(cls, v: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for key, values in v.items():
            if not values:
                raise ValueError(f"sweep key '{key}' needs at least one value")
        return v

    @field_validator("variant")
    @classmethod
    def _variant(cls, v: str) -> str:
        return _check_names([v], "variant", VARIANTS)[0]

    @field_validator("init")
    @classmethod
    def _init(cls, v: str | None) -> str | None:
        return v if v is None else _check_names([v], "init", INITS)[0]

    @field_validator("rungs")
    @classmethod
    def _rungs(cls, v: list[str]) -> list[str]:
        return v and _check_names(v, "rung", tuple(RUNGS))

    @model_validator(mode="after")
    def _attribution_frameworks(self) -> Stage:
        self.arms()  # an attribution stage needs [pytorch, <keras arm>]
        return self

    def arms(self) -> list[tuple[str, str, str | None, str | None]]:
        """Each kind of run per seed: ``(framework, variant, init, perturbation)``.

        A plain stage: every framework with the stage's variant and init. An attribution stage
        (``rungs``): the arms its rungs compare, the first framework as the reference arm.
        """
        if not self.rungs:
            return [(fw, self.variant, self.init, None) for fw in self.frameworks]
        if len(self.frameworks) != 2 or self.frameworks[0] != "pytorch":
            raise ValueError("an attribution stage needs frameworks: [pytorch, <keras arm>]")
        role = {"reference": self.frameworks[0], "other": self.frameworks[1]}
        return [(role[a.role], a.variant, a.init, a.perturbation) for a in arms(self.rungs)]

    def train_config(
        self, base: TrainConfig, source: str = "experiment_matrix.yaml"
    ) -> TrainConfig:
        """``base`` with this stage's ``overrides`` merged over it."""
        return base.merged(self.overrides, source)

    @property
    def run_count(self) -> int:
        """Number of runs: datasets x models x precisions x seeds x arms x compile modes x
        sweep values."""
        n = len(self.compile or [None]) * len(self.arms())
        for axis in (self.datasets, self.models, self.precisions, self.seeds):
            n *= len(axis)
        for values in self.sweep.values():
            n *= len(values)
        return n


def _check_names(values: list[str], kind: str, known: tuple[str, ...]) -> list[str]:
    if not values:
        raise ValueError(f"at least one {kind} is needed")
    for v in values:
        if v not in known:
            raise ValueError(f"unknown {kind} '{v}'; known: {', '.join(known)}")
    if len(set(values)) != len(values):
        raise ValueError(f"a {kind} is listed twice")
    return values


class ExperimentMatrix(Strict):
    """``experiment_matrix.yaml``: named stages (the seed's ``stage1``, ``stage2``, ...)."""

    stages: dict[str, Stage]

    def stage(self, name: str) -> Stage:
        """The stage called ``name``; unknown names are a user error listing the known ones."""
        if name not in self.stages:
            raise FwbenchError(
                f"unknown stage '{name}'; known: {', '.join(self.stages)}",
                fix="pick a stage defined in experiment_matrix.yaml",
            )
        return self.stages[name]


def _merge_stages(base: dict, user: dict, source: Path) -> dict:
    # stages are replaced whole by name: a user's stage1 is their stage1, not a blend
    key = "stages"
    if not isinstance(user.get(key) or {}, dict):
        raise FwbenchError(
            f"invalid config key '{key}': must be a mapping of names to entries, "
            f"not {type(user[key]).__name__}",
            path=source,
            fix="see the defaults with `fwbench config show`",
        )
    out = {k: v for k, v in base.items() if k != key} | {k: v for k, v in user.items() if k != key}
    out[key] = dict(base.get(key, {})) | dict(user.get(key) or {})
    return out


def load_matrix(path: str | Path | None = None) -> ExperimentMatrix:
    """The experiment matrix: package stages plus (and replaced by) those in ``path``."""
    return _load(
        EXPERIMENT_MATRIX, ExperimentMatrix, None if path is None else Path(path), _merge_stages
    )
