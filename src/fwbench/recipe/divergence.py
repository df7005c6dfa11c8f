"""When a training run has diverged: one rule set, applied by the shared epoch loop to every arm.

A diverged run stops, ends in state ``diverged`` with its reason, and is excluded from every
statistic: a model whose loss exploded or that trains above chance is not a replicate of the
recipe. Limits are multiples of the chance loss ln(C) (``training.divergence`` in the config).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from fwbench.config.train import DivergenceConfig


class Diverged(Exception):
    """A run has diverged (caught by the loop; the run ends as ``diverged``)."""

    def __init__(self, reason: str, epoch: int, step: int | None, value: float):
        where = f"epoch {epoch + 1}" + ("" if step is None else f", step {step}")
        super().__init__(f"{reason} ({value:.6g}) at {where}")
        self.reason, self.epoch, self.step, self.value = reason, epoch, step, value


@dataclass(frozen=True)
class DivergenceWatch:
    """Checks one run's losses against its limits (all multiples of ln(num_classes))."""

    config: DivergenceConfig
    num_classes: int
    warmup_steps: int

    @property
    def chance_loss(self) -> float:
        """Cross-entropy of a uniform guess: ln(C)."""
        return math.log(self.num_classes)

    def _limit(self, multiple: float) -> float:
        return multiple * self.chance_loss

    def check_step(self, epoch: int, step: int, loss: float) -> None:
        """A non-finite loss, or a step loss above ``step_loss_multiple`` x ln(C)."""
        if not math.isfinite(loss):
            raise Diverged("non-finite training loss", epoch, step, loss)
        limit = self._limit(self.config.step_loss_multiple)
        if loss > limit:
            raise Diverged(
                f"training loss above {self.config.step_loss_multiple:g} x ln(C) = {limit:.2f}",
                epoch,
                step,
                loss,
            )

    def check_epoch(self, epoch: int, steps_done: int, train_loss: float, val_loss: float) -> None:
        """After warmup: epoch train loss above ``train_loss_multiple`` x ln(C), or val loss
        above ``val_loss_multiple`` x ln(C) (or non-finite)."""
        if not math.isfinite(val_loss):
            raise Diverged("non-finite validation loss", epoch, None, val_loss)
        if steps_done <= self.warmup_steps:
            return
        rules = (
            ("training", self.config.train_loss_multiple, train_loss),
            ("validation", self.config.val_loss_multiple, val_loss),
        )
        for what, multiple, value in rules:
            limit = self._limit(multiple)
            if value > limit:
                raise Diverged(
                    f"{what} loss above {multiple:g} x ln(C) = {limit:.2f} after warmup",
                    epoch,
                    None,
                    value,
                )
