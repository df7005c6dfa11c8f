"""Prepared data on disk, read by both arms: arrays, split indices and channel statistics.

``data/prepared/<dataset>/{train,test}_{images,labels}.npy`` hold the official training pool and
test set (uint8 NHWC); ``data/splits/<dataset>/{train,val}_indices.npy`` index the pool.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np

from fwbench.core.errors import FwbenchError
from fwbench.core.paths import Workspace
from fwbench.data.channel_stats import dataset_stats
from fwbench.data.splits import stratified_subset
from fwbench.registry.datasets import get_dataset

SPLITS = ("train", "val", "test")


@dataclass
class SplitArrays:
    """One split: uint8 NHWC RGB images and int64 labels."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return int(self.labels.size)


def _need(path, dataset: str):
    if not path.is_file():
        raise FwbenchError(
            f"dataset '{dataset}' is not prepared: {path.name} is missing",
            path=path.parent,
            fix=f"run `fwbench data prepare {dataset}`",
        )
    return path


def load_split(ws: Workspace, dataset: str, split: str, subset: int | None = None) -> SplitArrays:
    """Images and labels of ``split`` (train / val / test); ``subset`` takes a stratified part."""
    get_dataset(dataset)
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
    prepared = ws.prepared_dir / dataset
    pool = "test" if split == "test" else "train"
    images = np.load(_need(prepared / f"{pool}_images.npy", dataset), mmap_mode="r")
    labels = np.load(_need(prepared / f"{pool}_labels.npy", dataset))
    if split != "test":
        idx = np.load(_need(ws.splits_dir / dataset / f"{split}_indices.npy", dataset))
        images, labels = images[idx], labels[idx]
    if subset is not None:
        keep = stratified_subset(labels, subset)
        images, labels = images[keep], labels[keep]
    return SplitArrays(np.ascontiguousarray(images), labels.astype(np.int64))


def load_stats(ws: Workspace, dataset: str) -> tuple[np.ndarray, np.ndarray]:
    """Training-split channel (mean, std) in [0, 1] units, float32 arrays of shape (3,)."""
    mean, std = dataset_stats(ws.stats_file, dataset)
    return np.asarray(mean, np.float32), np.asarray(std, np.float32)


def load_classes(ws: Workspace, dataset: str) -> list[str]:
    """Class names in label order."""
    path = _need(ws.prepared_dir / dataset / "classes.json", dataset)
    return json.loads(path.read_text(encoding="utf-8"))
