"""The loss and hit count every Keras arm's step and evaluation use, in ``keras.ops``."""

from __future__ import annotations

import keras
from keras import ops


def loss_per_image(logits, labels, label_smoothing: float):
    """Cross-entropy per image, as ``torch.nn.functional.cross_entropy(label_smoothing=...)``."""
    if keras.backend.standardize_dtype(logits.dtype) not in ("float32", "float64"):
        logits = ops.cast(logits, "float32")  # float16/bfloat16 -> float32; float64 kept
    logp = ops.log_softmax(logits, axis=-1)
    picked = ops.take_along_axis(logp, ops.expand_dims(ops.cast(labels, "int32"), -1), axis=-1)
    nll = -ops.squeeze(picked, -1)
    if not label_smoothing:
        return nll
    return (1.0 - label_smoothing) * nll - label_smoothing * mean_of(logp, axis=-1)


def mean_loss(logits, labels, label_smoothing: float):
    """The batch's mean cross-entropy (what each Keras arm's step differentiates)."""
    return mean_of(loss_per_image(logits, labels, label_smoothing), axis=0)


def mean_of(x, axis: int):
    """``ops.mean`` along ``axis`` in ``x``'s own dtype: Keras' ``ops.mean`` computes float64 in
    float32 off TensorFlow (its ``result_type(float64, "float32")`` is float32 there)."""
    return ops.sum(x, axis=axis) / x.shape[axis]


def correct_count(logits, labels):
    """Top-1 hits in a batch (a backend scalar, read once per step)."""
    hits = ops.argmax(logits, axis=-1) == ops.cast(labels, "int32")
    return ops.sum(ops.cast(hits, "int32"))
