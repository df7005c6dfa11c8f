"""Divergence ends a run on a non-finite loss or a sustained signal, never on one spike."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from fwbench.config.train import DivergenceConfig
from fwbench.frameworks.base import Evaluation, load_backend
from fwbench.recipe.divergence import Diverged, DivergenceWatch
from fwbench.training.loop import train_run
from test_training import config, linear_model, new_run

LN10 = math.log(10)


def watch(**limits) -> DivergenceWatch:
    return DivergenceWatch(DivergenceConfig(**limits), num_classes=10, warmup_steps=6)


def replay(w: DivergenceWatch, steps: list[float], epochs: list[tuple[float, float]], spe: int):
    """Feed a loss trace through ``w`` as the loop does: every step, then each epoch's line."""
    records = []
    for step, loss in enumerate(steps):
        w.check_step(step // spe, step, loss)
        if (step + 1) % spe == 0:
            train, val = epochs[step // spe]
            records.append({"epoch": step // spe + 1, "train_loss": train, "val_loss": val})
            w.check_epoch(records, spe)


def test_a_spike_that_recovers_finishes():
    # Shaped like ResNet-50 on CIFAR-10 at batch 256 on an H200 (issue 18): ~2.3, one step at
    # 23.15 (> 10 x ln 10 = 23.03) at step 29, elevated losses that settle; epochs 6.72 -> 2.35,
    # val 2.31 -> 2.30. The old one-step rule ended this run at step 29.
    rng = np.random.default_rng(0)
    steps = list(2.3 + 0.05 * rng.standard_normal(200))
    steps[29] = 23.15
    steps[30:70] = np.geomspace(14.0, 2.4, 40)
    w = DivergenceWatch(DivergenceConfig(), num_classes=10, warmup_steps=0)
    replay(w, steps, [(6.72, 2.31), (2.35, 2.30)], spe=100)  # no exception: the run goes on
    assert max(steps) > w.limit(10.0) and len(w.state()) == 50


def test_sustained_growth_ends_the_run_at_the_step_the_window_crosses_the_limit():
    steps = list(2.3 * 1.03 ** np.arange(200))
    means = [np.mean(steps[s - 49 : s + 1]) for s in range(49, 200)]
    first = 49 + next(i for i, m in enumerate(means) if m > 10 * LN10)
    w = DivergenceWatch(DivergenceConfig(), num_classes=10, warmup_steps=0)
    expected = (
        rf"mean training loss of the last 50 steps above 10 x ln\(C\) = 23\.03 .* step {first}$"
    )
    with pytest.raises(Diverged, match=expected) as e:
        replay(w, steps, [(50.0, 50.0)] * 2, spe=100)
    assert (e.value.epoch, e.value.step) == (first // 100, first)
    assert steps[first] > 10 * LN10 > means[first - 49 - 1]


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_a_non_finite_loss_ends_the_run_at_once(bad):
    steps = [2.3] * 7 + [bad] + [2.3] * 10
    with pytest.raises(
        Diverged, match=r"non-finite training loss \((nan|inf)\) at epoch 2, step 7"
    ):
        replay(watch(), steps, [(2.3, 2.3)] * 3, spe=6)


def test_epoch_rules_need_patience_epochs_past_warmup():
    w = watch()  # warmup: 6 steps = epoch 1 of 6 steps
    lines = [(20.0, 1e9), (20.0, 1.0)]
    records = [{"epoch": i + 1, "train_loss": t, "val_loss": v} for i, (t, v) in enumerate(lines)]
    w.check_epoch(records[:1], 6)  # still warming up
    w.check_epoch(records, 6)  # epoch 2 is the first past warmup: one bad epoch is not enough
    records.append({"epoch": 3, "train_loss": 1.5 * LN10 + 0.01, "val_loss": 1.0})
    expected = r"training loss above 1.5 x ln\(C\) = 3.45 for 2 epochs after warmup .* epoch 3$"
    with pytest.raises(Diverged, match=expected):
        w.check_epoch(records, 6)
    records[-1] = {"epoch": 3, "train_loss": 0.5, "val_loss": 1e6}  # val: 1.0 then 1e6
    w.check_epoch(records, 6)
    with pytest.raises(Diverged, match=r"non-finite validation loss"):
        w.check_epoch([{"epoch": 1, "train_loss": 1.0, "val_loss": math.nan}], 6)


def test_limits_are_configurable_and_validated():
    w = watch(train_loss_multiple=3.0, patience_epochs=1)
    w.check_epoch([{"epoch": 3, "train_loss": 2.9 * LN10, "val_loss": 1.0}], 6)
    with pytest.raises(Diverged, match="for 1 epochs"):
        w.check_epoch([{"epoch": 3, "train_loss": 3.1 * LN10, "val_loss": 1.0}], 6)
    with pytest.raises(ValueError):
        DivergenceConfig(step_loss_multiple=1.0)  # at or below chance is no divergence limit
    with pytest.raises(ValueError):
        DivergenceConfig(window_steps=0)


def test_the_window_survives_a_checkpoint():
    w = watch(window_steps=3)
    for step, loss in enumerate([2.0, 30.0, 30.0]):
        w.check_step(0, step, loss)
    resumed = watch(window_steps=3)
    resumed.restore(w.state())
    with pytest.raises(Diverged, match="step 3$"):
        resumed.check_step(1, 3, 30.0)  # the same verdict the uninterrupted run reaches


class _Faulty:
    """A real backend whose reported losses are replaced after some steps (a loss explosion)."""

    def __init__(self, inner, step_loss_after=None, val_loss=None, spike_at=None, loss=47.0):
        self.inner, self.steps, self.loss = inner, 0, loss
        self.step_loss_after, self.val_loss, self.spike_at = step_loss_after, val_loss, spike_at

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def train_step(self, micro_batches, lr):
        result = self.inner.train_step(micro_batches, lr)
        self.steps += 1
        after = self.step_loss_after is not None and self.steps > self.step_loss_after
        if after or self.steps - 1 == self.spike_at:
            return dataclasses.replace(result, loss_sum=self.loss)  # 47: finite, 20 x ln(10)
        return result

    def evaluate(self, split):
        e = self.inner.evaluate(split)
        return e if self.val_loss is None else Evaluation(self.val_loss, e.probabilities)


def test_a_sustained_loss_explosion_ends_the_run_diverged_with_its_reason(synthetic_ws, tmp_path):
    rd = new_run(
        synthetic_ws, tmp_path, "pytorch", config(training={"divergence": {"window_steps": 4}}), 3
    )
    backend = _Faulty(load_backend("pytorch", linear_model("pytorch")), step_loss_after=8)
    assert train_run(rd, synthetic_ws, backend=backend, show_progress=False) == "diverged"
    status = rd.read_status()
    # steps 8 and 9 at 47 beside two at ~2.3: the window's mean crosses 23.03 at step 9
    reason = status["divergence_reason"]
    assert reason.startswith("mean training loss of the last 4 steps above 10 x ln(C) = 23.03 (")
    assert reason.endswith(") at epoch 2, step 9") and status["error"] == reason
    assert (status["diverged_epoch"], status["diverged_step"]) == (2, 9)
    assert [e["epoch"] for e in rd.epochs()] == [1]  # the good epoch stays on record
    assert rd.test_metrics() is None


def test_one_spiking_step_does_not_end_the_run(synthetic_ws, tmp_path):
    rd = new_run(
        synthetic_ws, tmp_path, "pytorch", config(training={"divergence": {"window_steps": 4}}), 2
    )
    backend = _Faulty(load_backend("pytorch", linear_model("pytorch")), spike_at=3)
    assert train_run(rd, synthetic_ws, backend=backend, show_progress=False) == "done"
    assert rd.epochs()[0]["train_loss"] > 47.0 / 6  # the spike is in the record


def test_an_exploded_validation_loss_after_warmup_ends_the_run_diverged(synthetic_ws, tmp_path):
    cfg = config(lr={"warmup_epochs": 1.0})
    rd = new_run(synthetic_ws, tmp_path, "pytorch", cfg, epochs=4)
    backend = _Faulty(load_backend("pytorch", linear_model("pytorch")), val_loss=1.0e7)
    assert train_run(rd, synthetic_ws, backend=backend, show_progress=False) == "diverged"
    status = rd.read_status()
    assert status["divergence_reason"].startswith(
        "validation loss above 10 x ln(C) = 23.03 for 2 epochs after warmup (1e+07) at epoch 3"
    )
    # epoch 1 ends warmup exactly (6 steps): epochs 2 and 3 are the two past it; all lines kept
    assert status["diverged_epoch"] == 3 and status["diverged_step"] is None
    assert [e["val_loss"] for e in rd.epochs()] == [1.0e7] * 3


def test_stop_on_divergence_off_keeps_training(synthetic_ws, tmp_path):
    cfg = config(training={"stop_on_divergence": False})
    rd = new_run(synthetic_ws, tmp_path, "pytorch", cfg, epochs=2)
    backend = _Faulty(load_backend("pytorch", linear_model("pytorch")), step_loss_after=0)
    assert train_run(rd, synthetic_ws, backend=backend, show_progress=False) == "done"
    assert np.allclose([e["train_loss"] for e in rd.epochs()], 47.0)


def test_stop_on_divergence_off_still_ends_a_run_at_a_non_finite_loss(synthetic_ws, tmp_path):
    # NaN weights cannot recover; training on would end `failed` at the test metrics instead
    cfg = config(training={"stop_on_divergence": False})
    rd = new_run(synthetic_ws, tmp_path, "pytorch", cfg, epochs=2)
    inner = load_backend("pytorch", linear_model("pytorch"))
    backend = _Faulty(inner, step_loss_after=2, loss=float("nan"))
    assert train_run(rd, synthetic_ws, backend=backend, show_progress=False) == "diverged"
    status = rd.read_status()
    assert status["divergence_reason"].startswith("non-finite training loss")
    assert status["diverged_epoch"] == 1 and status["diverged_step"] == 2
