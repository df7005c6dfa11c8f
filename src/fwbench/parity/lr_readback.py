"""Each arm's own LR schedule, and the LR an optimizer applied, read off its update.

Shared by ``parity.lr`` (PyTorch and keras-tf, in this process) and the Keras arms' own
processes (``parity.backends``): a one-element parameter reset to 0 before each step with
gradient 1 moves by ``p₁ = −lr·d``, ``d`` PyTorch's SGD direction for a unit gradient.
"""

from __future__ import annotations

import numpy as np

from fwbench.config.train import TrainConfig
from fwbench.recipe import inputs
from fwbench.recipe.schedule import lr_table
from fwbench.record.runs import make_spec
from fwbench.registry.datasets import get_dataset


def unit_directions(momentum: float, nesterov: bool, steps: int) -> np.ndarray:
    """PyTorch SGD's update direction at each step for gradient 1 at p = 0 (float64)."""
    out, buf = np.empty(steps), 0.0
    for k in range(steps):
        buf = momentum * buf + 1.0 if momentum else 1.0
        out[k] = 1.0 + momentum * buf if (momentum and nesterov) else buf
    return out


def arm_schedule(
    cfg: TrainConfig, arm: str, dataset: str, subset: int | None, epochs_override: int | None
) -> list[float]:
    """The LR of every step as arm ``arm`` computes it: its own spec, step plan and schedule."""
    spec = make_spec(
        cfg, dataset=dataset, model="mobilenetv2", precision="fp32", seed=42,
        framework=arm, subset=subset, epochs_override=epochs_override,
    )  # fmt: skip
    train_size = get_dataset(dataset).train_size
    plan = inputs.step_plan(spec, min(subset or train_size, train_size))  # as load_inputs
    return lr_table(spec.train_config.lr, plan)


def applied_lrs(cfg: TrainConfig, updates: list[float]) -> np.ndarray:
    """The LR each step applied, from the updates ``p₁`` of a parameter reset to 0 (gradient 1)."""
    o = cfg.optimizer
    d = unit_directions(o.momentum, o.nesterov, len(updates))
    return -np.asarray(updates, np.float64) / d
