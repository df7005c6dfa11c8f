"""PyTorch input pipeline: ``DataLoader`` over the prepared uint8 arrays (seed phase 4).

Settings (from ``training`` in the train config; ``--num-workers`` overrides the count):
``num_workers=8, pin_memory=True, persistent_workers=True, prefetch_factor=2`` when workers > 0,
``drop_last=True`` for train only. Pinning is only requested when CUDA is available (pinned
host memory only helps host-to-GPU copies; on a CPU-only machine torch would warn and ignore it).

Workers on a small machine: each worker is a separate process decoding and augmenting images
while the main process trains. On a 2-core machine 8 workers oversubscribe the cores (9 busy
processes for 2 cores) and slow training; use ``--num-workers 0`` (load in the main process:
no inter-process copies, the best choice for 32x32 arrays already in memory) or at most 2.

The order and augmentation of every epoch come from ``fwbench.recipe.augment`` (shared with the
Keras
arm): the sampler yields ``(index, dy, dx, flip)`` keys in the epoch's shared order, and the
dataset applies them, so workers hold no random state and any worker count gives the same batches.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from fwbench.recipe.augment import augment_numpy, normalize_numpy
from fwbench.recipe.inputs import RunInputs

Key = int | tuple[int, int, int, bool]


class ArrayDataset(Dataset):
    """uint8 NHWC images -> normalised float32 CHW tensors; tuple keys also augment."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, mean, std, padding: int = 0):
        self.images, self.labels = images, labels
        self.mean, self.std, self.padding = mean, std, padding

    def __len__(self) -> int:
        return int(self.labels.size)

    def __getitem__(self, key: Key) -> tuple[torch.Tensor, int]:
        i, dy, dx, flip = key if isinstance(key, tuple) else (key, 0, 0, False)
        x = normalize_numpy(self.images[i], self.mean, self.std)
        if isinstance(key, tuple):
            x = augment_numpy(x, self.padding, dy, dx, flip)
        return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1))), int(self.labels[i])


class EpochSampler(Sampler):
    """Yields the current epoch's ``(index, dy, dx, flip)`` keys in the shared order."""

    def __init__(self, inputs: RunInputs):
        self.inputs = inputs
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose draws the next iteration yields."""
        self.epoch = epoch

    def __iter__(self) -> Iterator[tuple[int, int, int, bool]]:
        idx, dy, dx, flip = self.inputs.draws(self.epoch).records()
        return iter(zip(idx.tolist(), dy.tolist(), dx.tolist(), flip.tolist(), strict=True))

    def __len__(self) -> int:
        return self.inputs.train_images_per_epoch


def _loader_kwargs(inputs: RunInputs) -> dict:
    s = inputs.loader
    kw: dict = {
        "num_workers": s.num_workers,
        "pin_memory": s.pin_memory and torch.cuda.is_available(),
    }
    if s.num_workers > 0:
        kw.update(persistent_workers=s.persistent_workers, prefetch_factor=s.prefetch_factor)
    return kw


def train_loader(inputs: RunInputs) -> tuple[DataLoader, EpochSampler]:
    """The training loader (shared order and draws, ``drop_last=True``) and its sampler."""
    ds = ArrayDataset(
        inputs.train.images,
        inputs.train.labels,
        inputs.mean,
        inputs.std,
        inputs.augmentation.random_crop_padding,
    )
    sampler = EpochSampler(inputs)
    loader = DataLoader(
        ds, batch_size=inputs.batch_size, sampler=sampler, drop_last=True, **_loader_kwargs(inputs)
    )
    return loader, sampler


def eval_loader(inputs: RunInputs, split: str) -> DataLoader:
    """A ``val`` / ``test`` loader: in order, no augmentation, ``drop_last=False``."""
    arrays = inputs.split(split)
    ds = ArrayDataset(arrays.images, arrays.labels, inputs.mean, inputs.std)
    return DataLoader(
        ds,
        batch_size=inputs.eval_batch_size,
        shuffle=False,
        drop_last=False,
        **_loader_kwargs(inputs),
    )
