"""Split arithmetic at the real dataset sizes, and stratified subsets."""

from __future__ import annotations

import numpy as np
import pytest

from fwbench.core.errors import FwbenchError
from fwbench.data.splits import holdout_size, stratified_split, stratified_subset
from fwbench.registry.datasets import CIFAR10, CIFAR100, TINY_IMAGENET


@pytest.mark.parametrize(
    "info, per_class_train, per_class_val",
    [(CIFAR10, 4500, 500), (CIFAR100, 450, 50), (TINY_IMAGENET, 450, 50)],
)
def test_full_size_split_is_exact_and_balanced(info, per_class_train, per_class_val):
    rng = np.random.default_rng(7)
    labels = rng.permutation(
        np.repeat(np.arange(info.num_classes), info.pool_size // info.num_classes)
    )
    n_val = holdout_size(labels.size, info.pool_size, info.val_size, info.num_classes)
    train, val = stratified_split(labels, n_val, seed=42)
    assert (train.size, val.size) == (info.train_size, info.val_size)
    assert (info.train_size, info.val_size) in ((45_000, 5_000), (90_000, 10_000))
    assert (
        np.bincount(labels[train], minlength=info.num_classes).tolist()
        == [per_class_train] * info.num_classes
    )
    assert (
        np.bincount(labels[val], minlength=info.num_classes).tolist()
        == [per_class_val] * info.num_classes
    )
    assert np.intersect1d(train, val).size == 0
    again_train, again_val = stratified_split(labels, n_val, seed=42)
    assert np.array_equal(train, again_train) and np.array_equal(val, again_val)
    _, other_val = stratified_split(labels, n_val, seed=43)
    assert not np.array_equal(val, other_val)


def test_subset_is_stratified_and_deterministic():
    labels = np.repeat(np.arange(10), 50)
    sub = stratified_subset(labels, 100)
    assert np.bincount(labels[sub]).tolist() == [10] * 10
    assert np.array_equal(sub, stratified_subset(labels, 100))
    assert stratified_subset(labels, 10_000).size == 500


def test_subset_smaller_than_class_count_is_a_user_error():
    with pytest.raises(FwbenchError, match="--subset 10 or more"):
        stratified_subset(np.repeat(np.arange(10), 5), 5)
