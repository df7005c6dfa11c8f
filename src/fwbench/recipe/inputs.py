"""What both input pipelines are built from: the run's splits, statistics and loader settings."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from fwbench.config.train import AugmentationConfig
from fwbench.core.errors import FwbenchError
from fwbench.core.paths import Workspace
from fwbench.core.threads import default_workers
from fwbench.data.store import SplitArrays, load_split, load_stats
from fwbench.recipe.augment import EpochDraws, as_nhwc, draw_epoch
from fwbench.recipe.schedule import StepPlan, plan_steps
from fwbench.record.runs import RunSpec
from fwbench.registry.datasets import get_dataset


@dataclass(frozen=True)
class LoaderSettings:
    """Input-pipeline knobs (the seed's DataLoader settings; Keras uses AUTOTUNE instead)."""

    num_workers: int
    pin_memory: bool
    persistent_workers: bool
    prefetch_factor: int


@dataclass
class RunInputs:
    """Everything a pipeline needs, identical for both arms."""

    train: SplitArrays
    val: SplitArrays
    test: SplitArrays
    mean: np.ndarray
    std: np.ndarray
    augmentation: AugmentationConfig
    batch_size: int
    eval_batch_size: int
    seed: int
    num_classes: int
    plan: StepPlan
    loader: LoaderSettings

    def split(self, name: str) -> SplitArrays:
        """The ``train`` / ``val`` / ``test`` arrays."""
        return {"train": self.train, "val": self.val, "test": self.test}[name]

    @property
    def train_images_per_epoch(self) -> int:
        """Images one epoch trains on: whole optimizer steps of whole micro-batches."""
        return self.plan.steps_per_epoch * self.plan.accumulation * self.batch_size

    def draws(self, epoch: int) -> EpochDraws:
        """The epoch's shared order and augmentation draws (see ``fwbench.recipe.augment``)."""
        return draw_epoch(
            self.seed, epoch, len(self.train), self.augmentation, self.train_images_per_epoch
        )


def step_plan(spec: RunSpec, n_train: int) -> StepPlan:
    """The run's step plan for ``n_train`` images; a user error when it has no step at all."""
    t = spec.train_config.training
    try:
        return plan_steps(
            n_train,
            t.batch_size,
            t.gradient_accumulation_steps,
            spec.epochs,
            spec.train_config.lr.warmup_epochs,
        )
    except ValueError as e:
        raise FwbenchError(
            str(e), fix="use a larger --subset or a smaller training.batch_size"
        ) from None


def loader_workers(config_workers: int) -> int:
    """Loader workers when the command line names none: ``fwbench bench``'s rule for the CPUs
    this process may use (0 on a small machine: a worker would take a core from the step)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return default_workers(cpus or 1, config_workers)


def load_inputs(ws: Workspace, spec: RunSpec) -> RunInputs:
    """Load the splits and statistics of ``spec`` and work out its step plan."""
    cfg = spec.train_config
    _, aug, _ = cfg.for_dataset(spec.dataset)
    # --subset shrinks the training split only; evaluation stays whole unless --eval-subset
    sizes = {"train": spec.subset, "val": spec.eval_subset, "test": spec.eval_subset}
    splits = {s: load_split(ws, spec.dataset, s, subset=n) for s, n in sizes.items()}
    for arrays in splits.values():
        arrays.images = as_nhwc(arrays.images)
    mean, std = load_stats(ws, spec.dataset)
    t = cfg.training
    plan = step_plan(spec, len(splits["train"]))
    workers = loader_workers(t.num_workers) if spec.num_workers is None else spec.num_workers
    return RunInputs(
        train=splits["train"],
        val=splits["val"],
        test=splits["test"],
        mean=mean,
        std=std,
        augmentation=aug,
        batch_size=t.batch_size,
        eval_batch_size=t.eval_batch_size,
        seed=spec.seed,
        num_classes=get_dataset(spec.dataset).num_classes,
        plan=plan,
        loader=LoaderSettings(workers, t.pin_memory, t.persistent_workers, t.prefetch_factor),
    )
