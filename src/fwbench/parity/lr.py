"""LR parity (fairness layer 2): every optimizer step uses the same learning rate in both arms.

Both arms' real optimizers (``torch.optim.SGD`` and the Keras arm's ``TorchSGD``) are stepped
through a run's whole step plan on a one-element parameter, the LR set as the training loop
sets it; after each step the LR the optimizer held is read back and compared with the other
arm's and with ``fwbench.recipe.schedule.lr_at``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fwbench.config.train import ExperimentMatrix, TrainConfig
from fwbench.recipe.schedule import StepPlan, lr_table, plan_steps
from fwbench.registry.datasets import get_dataset

RELATIVE_TOLERANCE = 1e-9


@dataclass(frozen=True)
class LRParity:
    """The per-step LRs of both arms for one step plan."""

    plan: StepPlan
    schedule: np.ndarray
    pytorch: np.ndarray
    keras: np.ndarray

    @property
    def max_relative_diff(self) -> float:
        """max |pytorch - keras| / max(|schedule|, tiny) over all steps."""
        scale = np.maximum(np.abs(self.schedule), np.finfo(np.float64).tiny)
        return float(np.max(np.abs(self.pytorch - self.keras) / scale))

    @property
    def max_relative_diff_to_schedule(self) -> float:
        """The worse arm's max relative distance from the shared schedule."""
        scale = np.maximum(np.abs(self.schedule), np.finfo(np.float64).tiny)
        return float(
            max(np.max(np.abs(arm - self.schedule) / scale) for arm in (self.pytorch, self.keras))
        )

    @property
    def passed(self) -> bool:
        worst = max(self.max_relative_diff, self.max_relative_diff_to_schedule)
        return worst <= RELATIVE_TOLERANCE


@dataclass(frozen=True)
class LRCase:
    """One dataset's recipe and step plan to check."""

    dataset: str
    config: TrainConfig
    plan: StepPlan


def step_plan(
    cfg: TrainConfig, dataset: str, subset: int | None, epochs_override: int | None
) -> StepPlan:
    """The optimizer-step plan a run of ``dataset`` follows with ``cfg``."""
    epochs = epochs_override or cfg.for_dataset(dataset)[0]
    train_size = get_dataset(dataset).train_size
    n_train = min(subset or train_size, train_size)
    t = cfg.training
    return plan_steps(
        n_train, t.batch_size, t.gradient_accumulation_steps, epochs, cfg.lr.warmup_epochs
    )


def lr_cases(
    cfg: TrainConfig,
    dataset: str,
    matrix: ExperimentMatrix | None = None,
    stage: str | None = None,
    subset: int | None = None,
    epochs_override: int | None = None,
) -> list[LRCase]:
    """The cases to check: ``dataset`` alone, or every dataset of ``stage`` with its recipe."""
    if stage is None or matrix is None:
        return [LRCase(dataset, cfg, step_plan(cfg, dataset, subset, epochs_override))]
    st = matrix.stage(stage)
    stage_cfg = st.train_config(cfg)
    subset, epochs_override = subset or st.subset, epochs_override or st.epochs_override
    return [
        LRCase(name, stage_cfg, step_plan(stage_cfg, name, subset, epochs_override))
        for name in st.datasets
    ]


def torch_lrs(cfg: TrainConfig, schedule: list[float]) -> np.ndarray:
    """Step ``torch.optim.SGD`` through ``schedule``; the LR it held at each step."""
    import torch

    from fwbench.frameworks.pytorch.backend import set_optimizer_lr

    p = torch.nn.Parameter(torch.zeros(1))
    o = cfg.optimizer
    opt = torch.optim.SGD(
        [p], lr=0.0, momentum=o.momentum, nesterov=o.nesterov, weight_decay=o.weight_decay
    )
    used = []
    for lr in schedule:
        set_optimizer_lr(opt, lr)
        p.grad = torch.zeros(1)
        used.append(opt.param_groups[0]["lr"])
        opt.step()
    return np.asarray(used, dtype=np.float64)


def keras_lrs(cfg: TrainConfig, schedule: list[float]) -> np.ndarray:
    """Step the Keras arm's ``TorchSGD`` through ``schedule``; the LR it held at each step."""
    import keras
    import tensorflow as tf

    from fwbench.frameworks.keras.optimizer import TorchSGD

    o = cfg.optimizer
    sgd = TorchSGD(o.momentum, o.nesterov, o.weight_decay)
    v = keras.Variable(np.zeros(1, np.float32))
    sgd.build([v])

    @tf.function
    def step(lr):
        sgd.lr64.assign(lr)
        used = tf.convert_to_tensor(sgd.learning_rate)
        sgd.apply([tf.zeros(1)], [v])
        return used

    return np.asarray([float(step(tf.constant(lr, tf.float64))) for lr in schedule])


@dataclass(frozen=True)
class ArmLR:
    """The LRs another Keras arm's ``TorchSGD`` held, per step, against the schedule.

    keras-jax holds the LR in float32 (JAX has no float64 unless x64 is switched on for the
    whole process), so its tolerance is float32 rounding; every arm applies the LR in the
    variables' float32, so the LR *applied* must be identical in every arm (``applied_equal``).
    """

    arm: str
    dtype: str
    lrs: np.ndarray
    schedule: np.ndarray

    @property
    def tolerance(self) -> float:
        return RELATIVE_TOLERANCE if self.dtype == "float64" else 2.0**-24

    @property
    def max_relative_diff_to_schedule(self) -> float:
        scale = np.maximum(np.abs(self.schedule), np.finfo(np.float64).tiny)
        return float(np.max(np.abs(self.lrs - self.schedule) / scale))

    @property
    def applied_equal(self) -> bool:
        return bool(np.array_equal(self.lrs.astype(np.float32), self.schedule.astype(np.float32)))

    @property
    def passed(self) -> bool:
        return self.applied_equal and self.max_relative_diff_to_schedule <= self.tolerance


def arm_lrs(arm: str, cfg: TrainConfig, schedule: list[float]) -> ArmLR:
    """Step ``arm``'s ``TorchSGD`` through ``schedule`` in the arm's own process."""
    from fwbench.parity.backends import run_in_arm

    o = cfg.optimizer
    args = {"momentum": o.momentum, "nesterov": o.nesterov, "wd": o.weight_decay,
            "schedule": list(schedule)}  # fmt: skip
    got = run_in_arm(arm, "lrs", args)["result"]
    return ArmLR(arm, got["dtype"], np.asarray(got["lrs"], np.float64), np.asarray(schedule))


def check_lr(cfg: TrainConfig, plan: StepPlan) -> LRParity:
    """Run both optimizers through ``plan`` with ``cfg``'s schedule and compare."""
    from fwbench.frameworks.both import import_both

    import_both()
    schedule = lr_table(cfg.lr, plan)
    return LRParity(plan, np.asarray(schedule), torch_lrs(cfg, schedule), keras_lrs(cfg, schedule))
