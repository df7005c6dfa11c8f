"""Pixel parity (fairness layer 1): the same image gives the same tensor in every pipeline.

Each check takes one image of a prepared split through the PyTorch arm's dataset and through a
Keras pipeline, the keras arm's TensorFlow ops and the numpy pipeline of keras-jax and
keras-torch, and compares the float32 results (PyTorch's CHW transposed to HWC):

- ``normalised``: no augmentation (the seed's check: max |Δ| < 1e-5; expected 0.0);
- ``crop+flip``: the train-time transform at the largest crop offset with a flip, with the
  dataset's configured padding (shows the augmentation ops agree too).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from types import SimpleNamespace

import numpy as np

from fwbench.config.train import TrainConfig
from fwbench.core.errors import FwbenchError
from fwbench.core.paths import Workspace
from fwbench.data.store import load_split, load_stats
from fwbench.frameworks.both import import_both
from fwbench.recipe.augment import as_nhwc

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
    # every input is read and checked before a framework loads: its log lines never come
    # before a user error
    arrays = load_split(ws, dataset, split)
    if not 0 <= index < len(arrays):
        raise FwbenchError(
            f"image index {index} is outside the {split} split ({len(arrays)} images)",
            fix=f"use --index between 0 and {len(arrays) - 1}",
        )
    images = as_nhwc(arrays.images)
    mean, std = load_stats(ws, dataset)
    padding = train_config.for_dataset(dataset)[1].random_crop_padding

    import_both()  # torch before TensorFlow, in one place
    import tensorflow as tf

    from fwbench.frameworks.keras.tensorflow.data import augment_tf, normalize_tf
    from fwbench.frameworks.pytorch.data import ArrayDataset

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
    numpy_rows = _numpy_pipeline_checks(arrays, images, mean, std, padding, split, index, ds)
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
    ] + numpy_rows


def _numpy_pipeline_checks(arrays, images, mean, std, padding, split, index, ds):
    """The image through the numpy pipeline (keras-jax, keras-torch) vs the PyTorch dataset."""
    from dataclasses import replace

    from fwbench.frameworks.keras.data_numpy import NumpyPipelines

    one = replace(arrays, images=images)
    inputs = SimpleNamespace(mean=mean, std=std, split=lambda _: one, train=one,
                             augmentation=SimpleNamespace(random_crop_padding=padding))  # fmt: skip
    pipe = NumpyPipelines(inputs)
    x, _ = pipe.eval_batch(split, np.array([index]))
    corner = 2 * padding
    aug, _ = pipe.train_batch(np.array([index]), np.array([corner]), np.array([corner]),
                              np.array([True]))  # fmt: skip
    plain_t = ds[index][0].numpy().transpose(1, 2, 0)
    aug_t = ds[(index, corner, corner, True)][0].numpy().transpose(1, 2, 0)
    label = "numpy pipeline (keras-jax, keras-torch)"
    return [
        PixelCheck(f"{label}: normalised", split, index, x[0].shape, _diff(plain_t, x[0]),
                   TOLERANCE),
        PixelCheck(f"{label}: crop+flip (pad {padding}, offset {corner})", split, index,
                   aug[0].shape, _diff(aug_t, aug[0]), TOLERANCE),
    ]  # fmt: skip


def _diff(a: np.ndarray, b: np.ndarray) -> float:
    if a.shape != b.shape:
        return float("inf")
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))
