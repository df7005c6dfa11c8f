"""LR parity (fairness layer 2): every optimizer step uses the same learning rate in every arm.

Each arm's schedule comes from its own code path: its own run spec (``make_spec`` with the
arm's framework), its own step plan (``recipe.inputs.step_plan``, what ``load_inputs`` uses) and
``lr_table`` over it. Each arm's real optimizer (``torch.optim.SGD``, the Keras arms'
``TorchSGD``) is stepped through that schedule on a one-element parameter reset to 0 before
each step, with gradient 1; after each step the LR the optimizer *held* is read back, and the
LR it *applied* is read off the update (``p₁ = −lr·d``, ``d`` = PyTorch's SGD direction for a
unit gradient, tracked in float64). Both are compared with the PyTorch arm's schedule, step by
step: a per-arm warmup, plan or LR scale difference fails.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fwbench.config.experiment_matrix import ExperimentMatrix
from fwbench.config.train import TrainConfig
from fwbench.parity.lr_readback import applied_lrs, arm_schedule
from fwbench.recipe.schedule import StepPlan, plan_steps
from fwbench.registry.datasets import get_dataset

RELATIVE_TOLERANCE = 1e-9
# The applied LR is read off a float32 parameter: p₁ = −lr·d. The LR rounds once to float32
# and the product once more (2^-24 each); the momentum buffer d = μ·d + 1, kept in float32 over
# every step, carries each step's rounding on, damped by μ: its relative error stays within
# 2^-24·(1 + μ + μ² + …) = 2^-24 / (1 − μ). Measured on the demo (digits, 152 steps, μ 0.9):
# 5.97e-7 = 10.0 × 2^-24. Twice the bound leaves room for the order of the float32 operations;
# a wrong schedule (half the warmup, 0.5× the LR) differs by 1e-2 or more.
FLOAT32_ROUNDING = 2.0**-24


def applied_tolerance(momentum: float) -> float:
    """How far the LR read off a float32 update may sit from the schedule (relative)."""
    return 2.0 * FLOAT32_ROUNDING * (2.0 + 1.0 / (1.0 - min(momentum, 0.999)))


@dataclass(frozen=True)
class LRParity:
    """The per-step LRs of both arms for one step plan."""

    plan: StepPlan
    schedule: np.ndarray  # the PyTorch arm's
    pytorch: np.ndarray  # held
    keras: np.ndarray  # held
    keras_schedule: np.ndarray  # from the Keras arm's own spec and plan
    pytorch_applied: np.ndarray  # read off the update
    keras_applied: np.ndarray
    applied_tolerance: float  # see :func:`applied_tolerance`

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
    def max_relative_diff_applied(self) -> float:
        """The worse arm's max relative distance of the applied LR from PyTorch's schedule."""
        return max(_rel(arm, self.schedule) for arm in (self.pytorch_applied, self.keras_applied))

    @property
    def passed(self) -> bool:
        schedules = (self.keras_schedule.shape == self.schedule.shape) and (
            _rel(self.keras_schedule, self.schedule) <= RELATIVE_TOLERANCE
        )
        worst = max(self.max_relative_diff, self.max_relative_diff_to_schedule)
        return (
            schedules
            and worst <= RELATIVE_TOLERANCE
            and self.max_relative_diff_applied <= self.applied_tolerance
        )


def _rel(values: np.ndarray, schedule: np.ndarray) -> float:
    """max |values − schedule| / max(|schedule|, tiny); inf when the step counts differ."""
    if values.shape != schedule.shape:
        return float("inf")
    scale = np.maximum(np.abs(schedule), np.finfo(np.float64).tiny)
    return float(np.max(np.abs(values - schedule) / scale, initial=0.0))


@dataclass(frozen=True)
class LRCase:
    """One dataset's recipe and step plan to check."""

    dataset: str
    config: TrainConfig
    plan: StepPlan
    subset: int | None = None
    epochs_override: int | None = None


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
        plan = step_plan(cfg, dataset, subset, epochs_override)
        return [LRCase(dataset, cfg, plan, subset, epochs_override)]
    st = matrix.stage(stage)
    stage_cfg = st.train_config(cfg)
    subset, epochs_override = subset or st.subset, epochs_override or st.epochs_override
    return [
        LRCase(
            name,
            stage_cfg,
            step_plan(stage_cfg, name, subset, epochs_override),
            subset,
            epochs_override,
        )
        for name in st.datasets
    ]


def torch_lrs(cfg: TrainConfig, schedule: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """Step ``torch.optim.SGD`` through ``schedule``; the LR it held and applied at each step."""
    import torch

    from fwbench.frameworks.pytorch.backend import set_optimizer_lr

    p = torch.nn.Parameter(torch.zeros(1))
    o = cfg.optimizer
    opt = torch.optim.SGD(
        [p], lr=0.0, momentum=o.momentum, nesterov=o.nesterov, weight_decay=o.weight_decay
    )
    used, updates = [], []
    for lr in schedule:
        set_optimizer_lr(opt, lr)
        with torch.no_grad():
            p.zero_()
        p.grad = torch.ones(1)
        used.append(opt.param_groups[0]["lr"])
        opt.step()
        updates.append(float(p.detach()[0]))
    return np.asarray(used, dtype=np.float64), applied_lrs(cfg, updates)


def keras_lrs(cfg: TrainConfig, schedule: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """Step the Keras arm's ``TorchSGD`` through ``schedule``; the LR it held and applied."""
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
        v.assign(tf.zeros(1))
        used = tf.convert_to_tensor(sgd.learning_rate)
        sgd.apply([tf.ones(1)], [v])
        return used, tf.convert_to_tensor(v)[0]

    out = [step(tf.constant(lr, tf.float64)) for lr in schedule]
    held = np.asarray([float(u) for u, _ in out])
    return held, applied_lrs(cfg, [float(p) for _, p in out])


@dataclass(frozen=True)
class ArmLR:
    """Another Keras arm's own schedule and the LRs its ``TorchSGD`` held and applied, per step.

    keras-jax holds the LR in float32 (JAX has no float64 unless x64 is switched on for the
    whole process), so its tolerance is float32 rounding; every arm applies the LR in the
    variables' float32, so the LR *held* must round to the schedule's float32 in every arm
    (``applied_equal``).
    """

    arm: str
    dtype: str
    lrs: np.ndarray  # held
    schedule: np.ndarray  # the PyTorch arm's
    own_schedule: np.ndarray  # from this arm's own spec and plan
    applied: np.ndarray  # read off the update
    applied_tolerance: float  # see :func:`applied_tolerance`

    @property
    def tolerance(self) -> float:
        return RELATIVE_TOLERANCE if self.dtype == "float64" else 2.0**-24

    @property
    def max_relative_diff_to_schedule(self) -> float:
        return max(_rel(self.lrs, self.schedule), _rel(self.own_schedule, self.schedule))

    @property
    def max_relative_diff_applied(self) -> float:
        return _rel(self.applied, self.schedule)

    @property
    def applied_equal(self) -> bool:
        return bool(
            self.lrs.shape == self.schedule.shape
            and np.array_equal(self.lrs.astype(np.float32), self.schedule.astype(np.float32))
        )

    @property
    def passed(self) -> bool:
        return (
            self.applied_equal
            and self.max_relative_diff_to_schedule <= self.tolerance
            and self.max_relative_diff_applied <= self.applied_tolerance
        )


def arm_lrs(arm: str, case: LRCase, schedule: list[float]) -> ArmLR:
    """``arm``'s own schedule, stepped through its ``TorchSGD`` in the arm's own process."""
    from fwbench.parity.backends import run_in_arm

    args = {"train_config": case.config.model_dump(mode="json"), "dataset": case.dataset,
            "subset": case.subset, "epochs_override": case.epochs_override}  # fmt: skip
    got = run_in_arm(arm, "lrs", args)["result"]
    arrays = (np.asarray(got[k], np.float64) for k in ("lrs", "schedule", "applied"))
    held, own, applied = arrays
    tolerance = applied_tolerance(case.config.optimizer.momentum)
    return ArmLR(arm, got["dtype"], held, np.asarray(schedule), own, applied, tolerance)


def check_lr(case: LRCase) -> LRParity:
    """Run the PyTorch and keras-tf optimizers through each arm's own schedule and compare."""
    from fwbench.frameworks.both import import_both

    import_both()
    where = (case.dataset, case.subset, case.epochs_override)
    schedule = arm_schedule(case.config, "pytorch", *where)
    keras_schedule = arm_schedule(case.config, "keras", *where)
    pt_held, pt_applied = torch_lrs(case.config, schedule)
    ks_held, ks_applied = keras_lrs(case.config, keras_schedule)
    return LRParity(
        case.plan, np.asarray(schedule), pt_held, ks_held, np.asarray(keras_schedule),
        pt_applied, ks_applied, applied_tolerance(case.config.optimizer.momentum),
    )  # fmt: skip
