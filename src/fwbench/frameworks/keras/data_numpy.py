"""TensorFlow-free input pipeline of the keras-jax and keras-torch arms: numpy batches, prefetched.

Train: the epoch's shared ``(index, dy, dx, flip)`` records (``fwbench.recipe.augment``), cut into
``batch_size`` slices (``drop_remainder``), each slice built by the reference transforms
``normalize_numpy`` and ``augment_numpy`` themselves, so every pixel equals the PyTorch arm's
and the keras-tf arm's (``fwbench parity pixels`` checks it). Val/test: in order, no
augmentation, last partial batch kept. Batches are float32 NHWC and int64 labels; the step
converts them to its backend's tensors.

Prefetch: one background thread keeps ``prefetch`` batches in flight while the step computes
(numpy, JAX and PyTorch release the GIL in their kernels), the counterpart of tf.data's
``prefetch`` and of DataLoader workers. ``convert`` (from the backend's step) runs on that thread
too: keras-torch pins each batch there, as DataLoader's ``pin_memory`` does, so the step's copy
to the GPU is asynchronous. Imports no framework.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from fwbench.recipe.augment import augment_numpy, normalize_numpy
from fwbench.recipe.inputs import RunInputs

Batch = tuple[np.ndarray, np.ndarray]


def prefetched(builders: Iterator[Callable[[], Batch]], depth: int) -> Iterator[Batch]:
    """Run each builder on one background thread, ``depth`` ahead; yield results in order."""
    if depth < 1:
        yield from (build() for build in builders)
        return
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fwbench-prefetch")
    pending: list[Future] = []
    try:
        for build in builders:
            pending.append(pool.submit(build))
            if len(pending) > depth:
                yield pending.pop(0).result()
        while pending:
            yield pending.pop(0).result()
    finally:  # an abandoned iterator (end of a bench window) stops its thread
        for f in pending:
            f.cancel()
        pool.shutdown(wait=False, cancel_futures=True)


class NumpyPipelines:
    """The train/val/test batches of one run, built from the prepared uint8 arrays."""

    def __init__(
        self,
        inputs: RunInputs,
        prefetch: int = 2,
        convert: Callable[[Batch], Any] | None = None,
    ):
        self.inputs, self.prefetch = inputs, prefetch
        self.convert = convert or (lambda batch: batch)
        self.mean = np.asarray(inputs.mean, np.float32)
        self.std = np.asarray(inputs.std, np.float32)

    def _image(self, split: str, i: int) -> np.ndarray:
        return normalize_numpy(self.inputs.split(split).images[i], self.mean, self.std)

    def train_batch(self, idx, dy, dx, flip) -> Batch:
        """One training batch from its records (shared order and draws)."""
        pad = self.inputs.augmentation.random_crop_padding
        x = [
            augment_numpy(self._image("train", i), pad, a, b, f)
            for i, a, b, f in zip(
                idx.tolist(), dy.tolist(), dx.tolist(), flip.tolist(), strict=True
            )
        ]
        labels = self.inputs.train.labels[idx].astype(np.int64)
        return self.convert((np.ascontiguousarray(np.stack(x)), labels))

    def eval_batch(self, split: str, idx: np.ndarray) -> Batch:
        """One evaluation batch: images ``idx`` of ``split``, normalised, not augmented."""
        x = np.stack([self._image(split, i) for i in idx.tolist()])
        return self.convert((x, self.inputs.split(split).labels[idx].astype(np.int64)))

    def train(self, epoch: int) -> Iterator[Batch]:
        """The epoch's training batches: shared order and draws, last partial batch dropped."""
        records = self.inputs.draws(epoch).records()
        b = self.inputs.batch_size
        n = (len(records[0]) // b) * b

        def builders():
            for s in range(0, n, b):
                part = tuple(r[s : s + b] for r in records)
                yield lambda part=part: self.train_batch(*part)

        return prefetched(builders(), self.prefetch)

    def evaluation(self, split: str) -> Iterator[Batch]:
        """``val`` / ``test`` batches in order, no augmentation, last partial batch kept."""
        n, b = len(self.inputs.split(split).labels), self.inputs.eval_batch_size

        def builders():
            for s in range(0, n, b):
                idx = np.arange(s, min(s + b, n))
                yield lambda idx=idx: self.eval_batch(split, idx)

        return prefetched(builders(), self.prefetch)
