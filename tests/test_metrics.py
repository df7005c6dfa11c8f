"""Metrics both arms share (top-1/top-5, per-class accuracy, ECE) and the LR scaling rule."""

from __future__ import annotations

import numpy as np
import pytest

from fwbench.config.train import LRConfig
from fwbench.recipe import metrics
from fwbench.recipe.schedule import lr_table, plan_steps

# four images, three classes
PROBS = np.array(
    [
        [0.7, 0.2, 0.1],  # true 0: correct, confidence 0.7
        [0.1, 0.5, 0.4],  # true 2: wrong (2nd best), confidence 0.5
        [0.05, 0.9, 0.05],  # true 1: correct, confidence 0.9
        [0.3, 0.3, 0.4],  # true 0: wrong (ties 2nd), confidence 0.4
    ]
)
LABELS = np.array([0, 2, 1, 0])


def test_report_has_top1_top5_per_class_and_ece():
    r = metrics.classification_report(LABELS, PROBS, loss=0.8, num_classes=3)
    assert r["accuracy"] == 0.5 and r["n"] == 4 and r["loss"] == 0.8
    assert r["top5_accuracy"] == 1.0  # 3 classes: every label is within the top 5
    assert r["per_class_accuracy"] == [0.5, 1.0, 0.0]
    # bins of width 1/15: 0.4, 0.5, 0.7, 0.9 each alone; |acc - conf| = .4, .5, .3, .1
    assert r["ece"] == pytest.approx((0.4 + 0.5 + 0.3 + 0.1) / 4)
    assert r["ece_bins"] == 15


def test_top_k_accuracy_counts_labels_among_the_k_most_probable():
    probs = np.eye(8)[[0, 1, 2, 3]] * 0.5 + 0.5 / 8
    probs[3] = np.linspace(0.2, 0.05, 8)  # label 3 is the 4th most probable
    labels = np.array([0, 1, 2, 3])
    assert metrics.top_k_accuracy(labels, probs, 1) == 0.75
    assert metrics.top_k_accuracy(labels, probs, 3) == 0.75
    assert metrics.top_k_accuracy(labels, probs, 5) == 1.0


def test_a_class_without_images_has_no_accuracy():
    assert metrics.per_class_accuracy(np.array([0, 0]), np.array([0, 1]), 3) == [0.5, None, None]


def test_perfectly_calibrated_predictions_have_zero_ece():
    probs = np.array([[0.75, 0.25]] * 4)
    assert metrics.expected_calibration_error(np.array([0, 0, 0, 1]), probs) == pytest.approx(0)


@pytest.mark.parametrize(
    ("scaling", "batch", "peak"),
    [("linear", 256, 0.1), ("linear", 32, 0.0125), ("sqrt", 64, 0.05), ("none", 32, 0.1)],
)
def test_the_recipe_lr_follows_its_reference_batch(scaling, batch, peak):
    lr = LRConfig(base_lr=0.1, reference_batch=256, scaling=scaling, warmup_epochs=1.0)
    assert lr.peak_lr(batch) == pytest.approx(peak)
    plan = plan_steps(batch * 10, batch, 1, 3, 1.0)
    table = lr_table(lr, plan)
    assert max(table) == pytest.approx(peak) and table[plan.warmup_steps] == pytest.approx(peak)
    assert str(batch) in lr.describe(batch)


def test_accumulation_counts_towards_the_effective_batch():
    lr = LRConfig(base_lr=0.1, reference_batch=256)
    plan = plan_steps(1280, 32, 4, 2, 0.0)
    assert plan.effective_batch == 128 and lr_table(lr, plan)[0] == pytest.approx(0.05)
    assert "0.05 = base_lr 0.1 at reference batch 256, linear-scaled to batch 128" in (
        lr.describe(128)
    )
