"""Pixel parity (fairness layer 1): the same image gives the same tensor in both pipelines.

Each check takes one image of a prepared split through the PyTorch arm's dataset and the Keras
arm's TensorFlow ops and compares the float32 results (PyTorch's CHW transposed to HWC):

- ``normalised``: no augmentation (the seed's check: max |Δ| < 1e-5; expected 0.0);
- ``crop+flip``: the train-time transform at the largest crop offset with a flip, with the
  dataset's configured padding (shows the augmentation ops agree too).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from fwbench.augment import as_nhwc
from fwbench.config import TrainConfig
from fwbench.data.store import load_split, load_stats
from fwbench.errors import FwbenchError
from fwbench.frameworks.both import import_both
from fwbench.paths import Workspace

TOLERANCE = 1e-5


@dataclass(frozen=True)
class PixelCheck:
    """One image through both pipelines."""

    check: str
    split: str
    index: int
    shape: tuple[int, ...]
    max_abs_diff: float
    tolerance: float

    @property
    def passed(self) -> bool:
        return self.max_abs_diff < self.tolerance

    def as_row(self) -> dict:
        """The check as a flat dict (table row)."""
        return asdict(self) | {"passed": self.passed}


def check_pixels(
    ws: Workspace, dataset: str, train_config: TrainConfig, split: str = "val", index: int = 0
) -> list[PixelCheck]:
    """Run image ``index`` of ``split`` through both arms' pipelines; one row per check."""
    import_both()  # torch before TensorFlow, in one place
    import tensorflow as tf

    from fwbench.frameworks.keras.data import augment_tf, normalize_tf
    from fwbench.frameworks.pytorch.data import ArrayDataset

    arrays = load_split(ws, dataset, split)
    if not 0 <= index < len(arrays):
        raise FwbenchError(
            f"image index {index} is outside the {split} split ({len(arrays)} images)",
            fix=f"use --index between 0 and {len(arrays) - 1}",
        )
    images = as_nhwc(arrays.images)
    mean, std = load_stats(ws, dataset)
    padding = train_config.for_dataset(dataset)[1].random_crop_padding
    ds = ArrayDataset(images, arrays.labels, mean, std, padding)
    image = tf.constant(images[index])
    tf_mean, tf_std = tf.constant(mean), tf.constant(std)

    def torch_hwc(key) -> np.ndarray:
        return ds[key][0].numpy().transpose(1, 2, 0)

    plain_t = torch_hwc(index)
    plain_k = normalize_tf(image, tf_mean, tf_std).numpy()
    corner = 2 * padding
    aug_t = torch_hwc((index, corner, corner, True))
    aug_k = augment_tf(normalize_tf(image, tf_mean, tf_std), padding, corner, corner, True).numpy()
    return [
        PixelCheck("normalised", split, index, plain_t.shape, _diff(plain_t, plain_k), TOLERANCE),
        PixelCheck(
            f"crop+flip (pad {padding}, offset {corner})",
            split,
            index,
            aug_t.shape,
            _diff(aug_t, aug_k),
            TOLERANCE,
        ),
    ]


def _diff(a: np.ndarray, b: np.ndarray) -> float:
    if a.shape != b.shape:
        return float("inf")
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))
