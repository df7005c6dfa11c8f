"""Keras input pipeline: ``tf.data`` over the prepared uint8 arrays (seed phase 4).

Train: ``from_tensor_slices`` of the epoch's ``(index, dy, dx, flip)`` records ->
``map(load_and_augment, num_parallel_calls=AUTOTUNE)`` -> ``batch(drop_remainder=True)`` ->
``prefetch(AUTOTUNE)``. Val/test: the same without augmentation and ``drop_remainder=False``.

Shuffling: the training set is shuffled every epoch, for train only, but by the *shared*
permutation of ``fwbench.recipe.augment`` rather than a ``Dataset.shuffle`` buffer, and the
crop/flip
parameters are the shared per-sample draws. So the Keras arm sees exactly the batches the
PyTorch arm sees (fairness layer 4); a ``shuffle`` buffer would give it a different stream.
The TensorFlow ops below reproduce ``fwbench.recipe.augment.normalize_numpy``/``augment_numpy``
exactly (``fwbench parity pixels`` checks it).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from fwbench.recipe.inputs import RunInputs

AUTOTUNE = tf.data.AUTOTUNE


def normalize_tf(image: tf.Tensor, mean: tf.Tensor, std: tf.Tensor) -> tf.Tensor:
    """One uint8 HWC image -> float32 HWC, three channels, normalised (as ``normalize_numpy``)."""
    if image.shape[-1] == 1:
        image = tf.repeat(image, 3, axis=-1)
    x = tf.cast(image, tf.float32) / tf.constant(255.0, tf.float32)
    return (x - mean) / std


def augment_tf(x: tf.Tensor, padding: int, dy, dx, flip) -> tf.Tensor:
    """Zero-pad by ``padding``, crop at ``(dy, dx)``, flip when ``flip`` (as ``augment_numpy``)."""
    if padding:
        h, w = x.shape[0], x.shape[1]
        x = tf.pad(x, [[padding, padding], [padding, padding], [0, 0]])
        x = x[dy : dy + h, dx : dx + w, :]
    return tf.cond(flip, lambda: tf.reverse(x, axis=[1]), lambda: x)


class KerasPipelines:
    """Builds the tf.data pipelines of one run; the arrays become tensors once."""

    def __init__(self, inputs: RunInputs):
        self.inputs = inputs
        self.mean = tf.constant(inputs.mean, tf.float32)
        self.std = tf.constant(inputs.std, tf.float32)
        self._images = {}
        self._labels = {}
        for split in ("train", "val", "test"):
            arrays = inputs.split(split)
            self._images[split] = tf.convert_to_tensor(arrays.images)
            self._labels[split] = tf.convert_to_tensor(arrays.labels.astype(np.int64))

    def train(self, epoch: int) -> tf.data.Dataset:
        """The epoch's training batches: shared order and draws, ``drop_remainder=True``."""
        idx, dy, dx, flip = self.inputs.draws(epoch).records()
        images, labels = self._images["train"], self._labels["train"]
        padding = self.inputs.augmentation.random_crop_padding

        def load(i, y0, x0, f):
            x = normalize_tf(tf.gather(images, i), self.mean, self.std)
            return augment_tf(x, padding, y0, x0, f), tf.gather(labels, i)

        ds = tf.data.Dataset.from_tensor_slices((idx, dy, dx, flip))
        ds = ds.map(load, num_parallel_calls=AUTOTUNE)
        return ds.batch(self.inputs.batch_size, drop_remainder=True).prefetch(AUTOTUNE)

    def evaluation(self, split: str) -> tf.data.Dataset:
        """``val`` / ``test`` batches in order, no augmentation, ``drop_remainder=False``."""
        images, labels = self._images[split], self._labels[split]

        def load(i):
            return normalize_tf(tf.gather(images, i), self.mean, self.std), tf.gather(labels, i)

        ds = tf.data.Dataset.range(int(labels.shape[0])).map(load, num_parallel_calls=AUTOTUNE)
        return ds.batch(self.inputs.eval_batch_size, drop_remainder=False).prefetch(AUTOTUNE)
