"""Divergence is caught, not analysed: exploding, non-finite or above-chance runs end `diverged`."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from fwbench.config.train import DivergenceConfig
from fwbench.frameworks.base import Evaluation, load_backend
from fwbench.recipe.divergence import Diverged, DivergenceWatch
from fwbench.training.loop import train_run
from test_training import config, linear_model, new_run, ws  # noqa: F401  (module fixture)

LN10 = math.log(10)


def watch(**limits) -> DivergenceWatch:
    return DivergenceWatch(DivergenceConfig(**limits), num_classes=10, warmup_steps=6)


def test_limits_are_multiples_of_the_chance_loss():
    w = watch()
    assert w.chance_loss == pytest.approx(2.302585, abs=1e-6)
    w.check_step(0, 0, 10 * LN10 - 1e-6)  # just under 10 x ln(10): fine
    expected = r"training loss above 10 x ln\(C\) = 23\.03 \(23\.0269\) at epoch 1, step 3"
    with pytest.raises(Diverged, match=expected) as e:
        w.check_step(0, 3, 10 * LN10 + 1e-3)
    assert (e.value.epoch, e.value.step) == (0, 3)
    for bad in (math.nan, math.inf):
        with pytest.raises(Diverged, match="non-finite training loss"):
            w.check_step(1, 9, bad)


def test_epoch_rules_wait_for_the_end_of_warmup():
    w = watch()
    w.check_epoch(0, steps_done=6, train_loss=20.0, val_loss=1e9)  # still warming up
    with pytest.raises(Diverged, match=r"training loss above 1.5 x ln\(C\) = 3.45 after warmup"):
        w.check_epoch(1, steps_done=12, train_loss=1.5 * LN10 + 0.01, val_loss=1.0)
    with pytest.raises(Diverged, match=r"validation loss above 10 x ln\(C\)"):
        w.check_epoch(1, steps_done=12, train_loss=0.5, val_loss=1e6)
    w.check_epoch(1, steps_done=12, train_loss=1.5 * LN10 - 0.01, val_loss=10 * LN10 - 0.01)
    with pytest.raises(Diverged, match="non-finite validation loss"):
        w.check_epoch(0, steps_done=1, train_loss=1.0, val_loss=math.nan)


def test_limits_are_configurable_and_validated():
    w = watch(train_loss_multiple=3.0)
    w.check_epoch(2, steps_done=100, train_loss=2.9 * LN10, val_loss=1.0)
    with pytest.raises(ValueError):
        DivergenceConfig(step_loss_multiple=1.0)  # at or below chance is no divergence limit


class _Faulty:
    """A real backend whose reported losses are replaced after some steps (a loss explosion)."""

    def __init__(self, inner, step_loss_after=None, val_loss=None):
        self.inner, self.steps = inner, 0
        self.step_loss_after, self.val_loss = step_loss_after, val_loss

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def train_step(self, micro_batches, lr):
        result = self.inner.train_step(micro_batches, lr)
        self.steps += 1
        if self.step_loss_after is not None and self.steps > self.step_loss_after:
            return dataclasses.replace(result, loss_sum=47.0)  # finite, 20 x ln(10)
        return result

    def evaluate(self, split):
        e = self.inner.evaluate(split)
        return e if self.val_loss is None else Evaluation(self.val_loss, e.probabilities)


def test_a_loss_explosion_ends_the_run_diverged_with_its_reason(ws, tmp_path):  # noqa: F811
    rd = new_run(ws, tmp_path, "pytorch", config(), epochs=3)
    backend = _Faulty(load_backend("pytorch", linear_model("pytorch")), step_loss_after=8)
    assert train_run(rd, ws, backend=backend, show_progress=False) == "diverged"
    status = rd.read_status()
    assert status["divergence_reason"] == "training loss above 10 x ln(C) = 23.03"
    assert "(47) at epoch 2, step 8" in status["error"]
    assert (status["diverged_epoch"], status["diverged_step"]) == (2, 8)
    assert [e["epoch"] for e in rd.epochs()] == [1]  # the good epoch stays on record
    assert rd.test_metrics() is None


def test_an_exploded_validation_loss_after_warmup_ends_the_run_diverged(ws, tmp_path):  # noqa: F811
    cfg = config(lr={"warmup_epochs": 1.0})
    rd = new_run(ws, tmp_path, "pytorch", cfg, epochs=3)
    backend = _Faulty(load_backend("pytorch", linear_model("pytorch")), val_loss=1.0e7)
    assert train_run(rd, ws, backend=backend, show_progress=False) == "diverged"
    status = rd.read_status()
    assert status["divergence_reason"].startswith("validation loss above 10 x ln(C)")
    # epoch 1 ends warmup exactly (6 steps): the rule applies from epoch 2, whose line is kept
    assert status["diverged_epoch"] == 2 and status["diverged_step"] is None
    assert [e["val_loss"] for e in rd.epochs()] == [1.0e7, 1.0e7]


def test_stop_on_divergence_off_keeps_training(ws, tmp_path):  # noqa: F811
    cfg = config(training={"stop_on_divergence": False})
    rd = new_run(ws, tmp_path, "pytorch", cfg, epochs=2)
    backend = _Faulty(load_backend("pytorch", linear_model("pytorch")), step_loss_after=0)
    assert train_run(rd, ws, backend=backend, show_progress=False) == "done"
    assert np.allclose([e["train_loss"] for e in rd.epochs()], 47.0)
