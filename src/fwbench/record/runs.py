"""RunSpec, run ids and the run directory: the contract between train, executors and analysis.

```
runs/<dataset>-<model>-<precision>-s<seed>-<framework>[-<variant>][-compiled]-<settings hash>/
  spec.json  env.json  status.json  epochs.jsonl  test.json  train.log  checkpoints/  tb/
```
The settings hash (8 hex digits of ``config_hash``) covers everything that can change a run's
numbers, so two stages that differ in any setting (a learning-rate sweep) never share a
directory, while identical settings do (stage1's runs are reused by stage2). Every write is
atomic; the run directory is the source of truth, every table is derived.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from fwbench.config.train import SEED_MAX, TrainConfig, check_seed, config_hash
from fwbench.core.errors import FwbenchError
from fwbench.core.fileio import read_jsonl, write_json
from fwbench.registry.arms import canonical
from fwbench.registry.models import PERTURBATIONS, default_init

# The fields of every line of epochs.jsonl, in order (training writes them, analysis reads them).
EPOCH_FIELDS: tuple[str, ...] = (
    "epoch",
    "train_loss",
    "train_accuracy",
    "val_loss",
    "val_accuracy",
    "val_macro_f1",
    "epoch_time_seconds",
    "learning_rate",
    "images_per_second",
    "data_time_seconds",
)

State = Literal["pending", "running", "interrupted", "done", "failed", "diverged"]
STATES: tuple[str, ...] = ("pending", "running", "interrupted", "done", "failed", "diverged")


class RunSpec(BaseModel):
    """Everything one training run needs, fully resolved (written to ``spec.json``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dataset: str
    model: str
    precision: str
    seed: int
    framework: str
    variant: str = "library"
    init: str = "own"  # "shared": the PyTorch arm's initial weights (matched variant)
    perturbation: str | None = None  # an innocuous change (instability floor), see models.py
    epochs: int
    input_size: int
    subset: int | None = None  # stratified part of the training split only
    eval_subset: int | None = None  # stratified part of val and test (default: whole)
    num_workers: int | None = None
    stage: str | None = None
    train_config: TrainConfig
    # The command-line overrides this spec was resolved with (``--set``, ``--lr`` ...), as given:
    # a record for the reader; their effect is already in ``train_config`` and ``epochs``.
    overrides: list[str] = []
    config_hash: str = ""

    @property
    def readable_id(self) -> str:
        """``<dataset>-<model>-<precision>-s<seed>-<framework>``, then ``-<variant>`` unless
        library, ``-own`` for a matched run that keeps its own init (``shared`` is the matched
        default), ``-<perturbation>`` for an instability-floor control, and ``-compiled`` in
        the compiled execution mode."""
        base = f"{self.dataset}-{self.model}-{self.precision}-s{self.seed}-{self.framework}"
        if self.variant != "library":
            base += f"-{self.variant}"
        if self.variant == "matched" and self.init == "own":
            base += "-own"
        base += f"-{self.perturbation}" if self.perturbation else ""
        return f"{base}-compiled" if self.compile == "compiled" else base

    @property
    def compile(self) -> str:
        """The execution mode, ``eager`` or ``compiled`` (``training.compile``; in the hash)."""
        return self.train_config.training.compile

    @property
    def run_id(self) -> str:
        """The readable id plus ``-<first 8 hex digits of config_hash>`` (the settings)."""
        return (
            f"{self.readable_id}-{self.config_hash[:8]}" if self.config_hash else self.readable_id
        )

    @property
    def cell(self) -> tuple[str, str, str]:
        """The (dataset, model, precision) cell this run is a replicate of."""
        return (self.dataset, self.model, self.precision)

    def with_hash(self) -> RunSpec:
        """This spec with ``config_hash`` set from everything that can change its results."""
        return self.model_copy(update={"config_hash": config_hash(identity_fields(self))})


# Spec fields that do not change what a run computes: the stage that asked for it, loader worker
# counts (the batches and augmentation draws are the same whatever process makes them), the
# record of command-line overrides (their effect is in the settings) and where metrics are sent.
_NOT_IDENTITY = {"config_hash", "stage", "num_workers", "overrides"}
_NOT_IDENTITY_TRAIN = ("tracking", "tracking_uri")


def _load_average() -> float | None:
    """The host's 1-minute load average (None where the OS has none): what else ran beside."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def identity_fields(spec: RunSpec) -> dict[str, Any]:
    """The spec as JSON, less the fields that cannot change its numbers (what the hash covers)."""
    fields = spec.model_dump(mode="json", exclude=_NOT_IDENTITY)
    fields["train_config"]["training"].pop("num_workers", None)
    for key in _NOT_IDENTITY_TRAIN:
        fields["train_config"].pop(key, None)
    return fields


def make_spec(
    train_config: TrainConfig,
    *,
    dataset: str,
    model: str,
    precision: str,
    seed: int,
    framework: str,
    variant: str = "library",
    init: str | None = None,
    perturbation: str | None = None,
    epochs_override: int | None = None,
    subset: int | None = None,
    eval_subset: int | None = None,
    num_workers: int | None = None,
    stage: str | None = None,
    compile_mode: str | None = None,
    overrides: list[str] | None = None,
) -> RunSpec:
    """Resolve a RunSpec from the train config and the run's identity (``keras-tf`` is ``keras``).

    ``compile_mode`` (``eager`` | ``compiled``) replaces the config's ``training.compile``.
    ``init`` defaults by variant (``models.default_init``); a ``perturbation`` is applied to the
    train config here, so the spec (and its hash) records what the run really does.
    """
    epochs, _, input_size = train_config.for_dataset(dataset)
    try:
        check_seed(seed)
    except ValueError as e:
        raise FwbenchError(str(e), fix=f"pass a seed from 0 to {SEED_MAX}") from None
    framework = canonical(framework)
    if compile_mode is not None and compile_mode != train_config.training.compile:
        training = train_config.training.model_copy(update={"compile": compile_mode})
        train_config = train_config.model_copy(update={"training": training})
    if perturbation is not None:
        train_config = perturbed(train_config, perturbation, framework)
    return RunSpec(
        dataset=dataset,
        model=model,
        precision=precision,
        seed=seed,
        framework=framework,
        variant=variant,
        init=default_init(framework, variant, init),
        perturbation=perturbation,
        epochs=epochs_override or epochs,
        input_size=input_size,
        subset=subset,
        eval_subset=eval_subset,
        num_workers=num_workers,
        stage=stage,
        train_config=train_config,
        overrides=overrides or [],
    ).with_hash()


def perturbed(train_config: TrainConfig, perturbation: str, framework: str) -> TrainConfig:
    """``train_config`` with an innocuous change applied (``models.PERTURBATIONS``)."""
    if perturbation not in PERTURBATIONS or framework != "pytorch":
        raise FwbenchError(
            f"unknown perturbation '{perturbation}' for framework '{framework}'; "
            f"known (pytorch only): {', '.join(PERTURBATIONS)}",
            fix="use a known perturbation on a pytorch run",
        )
    training = train_config.training
    toggled = training.model_copy(update={"channels_last": not training.channels_last})
    return train_config.model_copy(update={"training": toggled})


class RunDir:
    """One run directory: typed access to its files. Creating the object touches nothing."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    spec_path = property(lambda self: self.path / "spec.json")
    env_path = property(lambda self: self.path / "env.json")
    status_path = property(lambda self: self.path / "status.json")
    epochs_path = property(lambda self: self.path / "epochs.jsonl")
    test_path = property(lambda self: self.path / "test.json")
    log_path = property(lambda self: self.path / "train.log")
    checkpoints = property(lambda self: self.path / "checkpoints")

    @property
    def run_id(self) -> str:
        return self.path.name

    # --- spec -------------------------------------------------------------------------------
    def write_spec(self, spec: RunSpec) -> None:
        """Write ``spec.json``; a different spec already there is a user error (never clobbered)."""
        if self.spec_path.exists():
            old = self.read_spec()
            if old.config_hash != spec.config_hash:
                raise FwbenchError(
                    f"run directory already holds a run with other settings "
                    f"(config hash {old.config_hash}, new {spec.config_hash})",
                    path=self.path,
                    fix="use another --run-dir, or delete that directory to start over",
                )
            return
        self.path.mkdir(parents=True, exist_ok=True)
        write_json(self.spec_path, spec.model_dump(mode="json"))

    def read_spec(self) -> RunSpec:
        """The RunSpec in ``spec.json``."""
        try:
            return RunSpec.model_validate_json(self.spec_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise FwbenchError(
                "no spec.json in run directory", path=self.path, fix="pass the run's own directory"
            ) from None
        except ValueError as e:  # truncated JSON, or fields that are not a RunSpec's
            raise FwbenchError(
                f"spec.json is truncated or unreadable ({str(e).splitlines()[0]})",
                path=self.spec_path,
                fix="`fwbench run --stage S` rewrites it from the matrix; or delete the directory",
            ) from None

    # --- status -----------------------------------------------------------------------------
    def read_status(self) -> dict[str, Any]:
        """``status.json`` as a dict; ``{"state": "pending"}`` when absent or unreadable."""
        try:
            status = json.loads(self.status_path.read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError):
            return {"state": "pending"}
        # not an object: `fwbench.runcheck` calls the run corrupt; nothing here trusts it
        return status if isinstance(status, dict) else {"state": "pending"}

    @property
    def state(self) -> str:
        return self.read_status().get("state", "pending")

    def set_status(self, state: State, **fields: Any) -> dict[str, Any]:
        """Atomically update ``status.json`` (keeps earlier fields, stamps host, pid and time)."""
        status = self.read_status()
        now = time.time()
        status.update(fields)
        status.update(state=state, host=socket.gethostname(), pid=os.getpid(), updated_at=now)
        if state == "running":
            status.setdefault("started_at", now)
            status.setdefault("load_avg_start", _load_average())
            status.pop("error", None)
        if state in ("done", "failed", "diverged"):
            status["finished_at"] = now
            status["load_avg_end"] = _load_average()
        write_json(self.status_path, status)
        return status

    # --- results ----------------------------------------------------------------------------
    def epochs(self) -> list[dict[str, Any]]:
        """Every finished epoch's record from ``epochs.jsonl``."""
        return read_jsonl(self.epochs_path)

    def test_metrics(self) -> dict[str, Any] | None:
        """``test.json`` or None if the run has not reached test evaluation."""
        try:
            return json.loads(self.test_path.read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def log_tail(self, lines: int = 20) -> str:
        """The last ``lines`` lines of ``train.log`` (for failure reports)."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""


def run_dir_for(runs_root: str | Path, spec: RunSpec) -> RunDir:
    """The run directory of ``spec`` under ``runs_root``."""
    return RunDir(Path(runs_root) / spec.run_id)
