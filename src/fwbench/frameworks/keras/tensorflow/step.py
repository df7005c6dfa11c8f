"""The keras (TensorFlow) arm's step: ``GradientTape`` in ``tf.function``, fed by tf.data.

Execution: ``eager`` = ``tf.function`` graphs (Keras' default on TensorFlow); ``compiled`` =
``tf.function(jit_compile=True)``, XLA. A step without accumulation is one graph: each
variable's update can start as soon as its gradient exists and no host read splits the step
(``fwbench bench`` measured the two-call path ~4% slower than a bare loop on CPU). With
accumulation each micro-batch's gradients (of its mean loss / n) come from one function and are
summed; a second applies the sum (a loss scale only changes when applied, so the summed scaled
gradients unscale correctly).
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from fwbench.frameworks.base import StepResult
from fwbench.frameworks.keras.losses import correct_count, loss_per_image
from fwbench.frameworks.keras.tensorflow.data import KerasPipelines
from fwbench.recipe.inputs import RunInputs


def _op_determinism_enabled() -> bool:
    """Whether TF op determinism is in effect (read back, not assumed)."""
    from tensorflow.python.framework import config as tf_config  # no public getter

    return bool(tf_config.is_op_determinism_enabled())


class Step:
    """GradientTape training step of one :class:`KerasBackend` on TensorFlow."""

    def __init__(self, backend):
        self.b = backend

    def setup(self, threads: int, deterministic: bool, tf32: bool) -> dict[str, Any]:
        """Threads, op determinism, TF32; the runtime facts in effect."""
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(min(threads, 2))
        except RuntimeError:  # TF already initialised in this process (in-process tests)
            pass
        if deterministic:
            tf.config.experimental.enable_op_determinism()
        tf.config.experimental.enable_tensor_float_32_execution(tf32)
        return {
            "device": "gpu" if tf.config.list_physical_devices("GPU") else "cpu",
            "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
            "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
            "op_determinism": _op_determinism_enabled(),
            "tf32": bool(tf.config.experimental.tensor_float_32_execution_enabled()),
        }

    def build(self, inputs: RunInputs) -> None:
        """tf.data pipelines and the step's ``tf.function`` graphs."""
        self.pipelines = KerasPipelines(inputs)
        jit = self.b.compiled
        self._grads = tf.function(self._grads_impl, jit_compile=jit)
        self._apply = tf.function(self._apply_impl, jit_compile=jit)
        self._step = tf.function(self._step_impl, jit_compile=jit)
        self._eval = tf.function(self._eval_impl, reduce_retracing=True)

    def _grads_impl(self, x, y, n):
        b = self.b
        with tf.GradientTape() as tape:
            logits = b.model(x, training=True)
            loss = tf.reduce_mean(loss_per_image(logits, y, b.label_smoothing))
            scaled = b.optimizer.scale_loss(loss / tf.cast(n, loss.dtype))
        grads = tape.gradient(scaled, b.model.trainable_variables)
        return loss, correct_count(logits, y), grads

    def _apply_impl(self, grads):
        self.b.optimizer.apply(grads, self.b.model.trainable_variables)

    def _step_impl(self, x, y):
        loss, correct, grads = self._grads_impl(x, y, tf.constant(1.0, tf.float32))
        self._apply_impl(grads)
        return loss, correct

    def train_step(self, micro_batches: list[Any], lr: float) -> StepResult:
        """One optimizer step at ``lr`` over ``micro_batches``."""
        sgd = self.b.sgd
        sgd.set_lr(lr)
        if len(micro_batches) == 1:
            x, y = micro_batches[0]
            loss, ok = self._step(x, y)
            return StepResult(float(loss), int(ok), int(y.shape[0]), float(sgd.lr64.numpy()))
        n = tf.constant(float(len(micro_batches)), tf.float32)
        total, loss_sum, correct, count = None, 0.0, 0, 0
        for x, y in micro_batches:
            loss, ok, grads = self._grads(x, y, n)
            total = grads if total is None else [a + b for a, b in zip(total, grads, strict=True)]
            loss_sum += float(loss)
            correct += int(ok)
            count += int(y.shape[0])
        used_lr = float(sgd.lr64.numpy())
        self._apply(total)
        return StepResult(loss_sum, correct, count, used_lr)

    def _eval_impl(self, x, y):
        logits = tf.cast(self.b.model(x, training=False), tf.float32)
        return tf.reduce_sum(loss_per_image(logits, y, 0.0)), tf.nn.softmax(logits, axis=-1)

    def eval_batch(self, x, y):
        """Summed loss and class probabilities of one evaluation batch."""
        loss, preds = self._eval(x, y)
        return loss, preds.numpy()

    def to_variables(self) -> None:
        """Nothing to do: the step updates the Keras variables in place."""

    def from_variables(self) -> None:
        """Nothing to do: the step reads the Keras variables themselves."""
