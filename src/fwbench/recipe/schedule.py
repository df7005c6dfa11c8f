"""The learning-rate schedule and step arithmetic, written once and used by both arms.

Linear warmup from 0, then cosine decay, evaluated per optimizer step with
``T_max = total_steps - warmup_steps`` (the seed's rule). With gradient accumulation,
``batch_size`` is the micro-batch; one optimizer step consumes ``accumulation`` micro-batches.
The peak LR is ``LRConfig.peak_lr`` of the effective batch: the recipe's ``base_lr`` belongs to
its ``reference_batch`` and follows the configured scaling rule when a run's batch differs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from fwbench.config.train import LRConfig


@dataclass(frozen=True)
class StepPlan:
    """How many micro-batches and optimizer steps a run takes."""

    micro_batches_per_epoch: int
    accumulation: int
    epochs: int
    warmup_steps: int
    batch_size: int  # the micro-batch

    @property
    def effective_batch(self) -> int:
        """Images per optimizer step."""
        return self.batch_size * self.accumulation

    @property
    def steps_per_epoch(self) -> int:
        """Optimizer steps per epoch (a trailing partial accumulation window is dropped)."""
        return self.micro_batches_per_epoch // self.accumulation

    @property
    def total_steps(self) -> int:
        return self.steps_per_epoch * self.epochs


def plan_steps(
    n_train: int, batch_size: int, accumulation: int, epochs: int, warmup_epochs: float
) -> StepPlan:
    """The step plan for ``n_train`` images (train batches drop the remainder)."""
    micro = n_train // batch_size
    if micro // accumulation < 1:
        raise ValueError(
            f"{n_train} training images give no optimizer step at batch {batch_size} x "
            f"accumulation {accumulation}"
        )
    steps_per_epoch = micro // accumulation
    warmup = min(round(warmup_epochs * steps_per_epoch), steps_per_epoch * epochs)
    return StepPlan(micro, accumulation, epochs, warmup, batch_size)


def lr_at(step: int, lr: LRConfig, plan: StepPlan) -> float:
    """Learning rate of optimizer step ``step`` (0-based): warmup from 0, then cosine."""
    base, floor = lr.peak_lr(plan.effective_batch), lr.min_lr
    if step < plan.warmup_steps:
        return base * step / plan.warmup_steps
    t_max = plan.total_steps - plan.warmup_steps
    if t_max <= 0:
        return base
    t = min(step - plan.warmup_steps, t_max)
    return floor + (base - floor) * 0.5 * (1.0 + math.cos(math.pi * t / t_max))


def lr_table(lr: LRConfig, plan: StepPlan) -> list[float]:
    """The LR of every optimizer step of the run."""
    return [lr_at(s, lr, plan) for s in range(plan.total_steps)]
