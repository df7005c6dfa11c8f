"""Stratified splits with a fixed seed (42): train/val from the official training set, subsets."""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import train_test_split

from fwbench.core.errors import FwbenchError

SPLIT_SEED = 42


def stratified_split(
    labels: np.ndarray, n_holdout: int, seed: int = SPLIT_SEED
) -> tuple[np.ndarray, np.ndarray]:
    """Split ``range(len(labels))`` into (keep, holdout), stratified by label; both sorted.

    When every class count times the holdout fraction is an integer (CIFAR: 5,000 of 50,000),
    the holdout has exactly that many images of every class.
    """
    labels = np.asarray(labels)
    keep, holdout = train_test_split(
        np.arange(labels.size), test_size=n_holdout, stratify=labels, random_state=seed
    )
    return np.sort(keep), np.sort(holdout)


def holdout_size(pool: int, official_pool: int, official_val: int, num_classes: int) -> int:
    """Validation size: the official one for a full pool, else the same fraction (>= 1/class)."""
    if pool == official_pool:
        return official_val
    return max(num_classes, round(pool * official_val / official_pool))


def stratified_subset(labels: np.ndarray, n: int, seed: int = SPLIT_SEED) -> np.ndarray:
    """Sorted indices of a stratified subset of ``n`` items (all of them if ``n >= len``)."""
    labels = np.asarray(labels)
    if n >= labels.size:
        return np.arange(labels.size)
    n_classes = np.unique(labels).size
    if n < n_classes:
        raise FwbenchError(
            f"subset of {n} cannot hold one image of each of {n_classes} classes",
            fix=f"use --subset {n_classes} or more",
        )
    _, chosen = train_test_split(
        np.arange(labels.size), test_size=n, stratify=labels, random_state=seed
    )
    return np.sort(chosen)


def per_class_counts(labels: np.ndarray, num_classes: int) -> list[int]:
    """Images per class, for classes ``0..num_classes-1``."""
    return np.bincount(np.asarray(labels), minlength=num_classes).tolist()
