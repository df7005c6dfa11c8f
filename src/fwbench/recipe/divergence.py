"""When a training run has diverged: one rule set, applied by the shared epoch loop to every arm.

A diverged run stops and ends in state ``diverged`` with its reason (the step or epoch named).
Limits are multiples of the chance loss ln(C) (``training.divergence`` in the config):

- a non-finite training or validation loss ends the run at once (nothing can recover from it);
- otherwise only a *sustained* signal counts, never one step: the mean step loss over the last
  ``window_steps`` optimizer steps above ``step_loss_multiple`` x ln(C), or, once warmup is
  over, ``patience_epochs`` consecutive epochs whose training loss is above
  ``train_loss_multiple`` x ln(C) or whose validation loss is above ``val_loss_multiple`` x ln(C).

A single spike (ordinary early instability, e.g. 23.15 once among ~2.3 on CIFAR-10) must not end
a run that recovers: whichever framework spikes more would lose seeds, biasing the comparison.
How many seeds of each arm diverged is itself reported (``analysis/diverged_seeds.py``).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from typing import Any

from fwbench.config.train import DivergenceConfig


class Diverged(Exception):
    """A run has diverged (caught by the loop; the run ends as ``diverged``)."""

    def __init__(self, reason: str, epoch: int, step: int | None, value: float):
        where = f"epoch {epoch + 1}" + ("" if step is None else f", step {step}")
        super().__init__(f"{reason} ({value:.6g}) at {where}")
        self.reason, self.epoch, self.step, self.value = reason, epoch, step, value


class DivergenceWatch:
    """Checks one run's losses against its limits (all multiples of ln(num_classes)).

    Holds the last ``window_steps`` step losses; :meth:`state` / :meth:`restore` carry them
    through a checkpoint so a resumed run is judged as an uninterrupted one.
    """

    def __init__(self, config: DivergenceConfig, num_classes: int, warmup_steps: int):
        self.config, self.num_classes, self.warmup_steps = config, num_classes, warmup_steps
        self.recent: deque[float] = deque(maxlen=config.window_steps)

    @property
    def chance_loss(self) -> float:
        """Cross-entropy of a uniform guess: ln(C)."""
        return math.log(self.num_classes)

    def limit(self, multiple: float) -> float:
        """``multiple`` x ln(C)."""
        return multiple * self.chance_loss

    def state(self) -> list[float]:
        """The step losses in the window (for the last checkpoint)."""
        return list(self.recent)

    def restore(self, losses: Sequence[float]) -> None:
        """Refill the window from :meth:`state` (an old checkpoint without one: empty)."""
        self.recent.clear()
        self.recent.extend(losses)

    @staticmethod
    def check_finite(epoch: int, step: int | None, loss: float, what: str = "training") -> None:
        """A non-finite loss: the rule that holds even with ``stop_on_divergence: false``
        (the weights are NaN or inf from there on and cannot recover)."""
        if not math.isfinite(loss):
            raise Diverged(f"non-finite {what} loss", epoch, step, loss)

    def check_step(self, epoch: int, step: int, loss: float) -> None:
        """A non-finite loss at once; else a full window whose mean is above the step limit."""
        self.check_finite(epoch, step, loss)
        self.recent.append(loss)
        if len(self.recent) < self.recent.maxlen:
            return
        mean = sum(self.recent) / len(self.recent)
        multiple = self.config.step_loss_multiple
        if mean > self.limit(multiple):
            raise Diverged(
                f"mean training loss of the last {len(self.recent)} steps above "
                f"{multiple:g} x ln(C) = {self.limit(multiple):.2f}",
                epoch,
                step,
                mean,
            )

    def check_epoch(self, records: Sequence[dict[str, Any]], steps_per_epoch: int) -> None:
        """After the latest epoch of ``records`` (``epochs.jsonl`` lines, oldest first): a
        non-finite validation loss, or the last ``patience_epochs`` epochs all past warmup and
        all above the training or the validation limit."""
        last = records[-1]
        epoch = last["epoch"] - 1
        self.check_finite(epoch, None, last["val_loss"], "validation")
        patience = self.config.patience_epochs
        recent = records[-patience:]
        if len(recent) < patience or recent[0]["epoch"] * steps_per_epoch <= self.warmup_steps:
            return
        rules = (
            ("training", "train_loss", self.config.train_loss_multiple),
            ("validation", "val_loss", self.config.val_loss_multiple),
        )
        for what, key, multiple in rules:
            limit = self.limit(multiple)
            if all(r[key] > limit for r in recent):
                raise Diverged(
                    f"{what} loss above {multiple:g} x ln(C) = {limit:.2f} for {patience} "
                    "epochs after warmup",
                    epoch,
                    None,
                    last[key],
                )
