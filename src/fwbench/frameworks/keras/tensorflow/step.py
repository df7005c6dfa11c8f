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
from fwbench.registry.determinism import mechanism


def _apply_determinism(deterministic: bool) -> dict[str, Any]:
    """TensorFlow's mechanism of the determinism rule; what is in effect (read back)."""
    from tensorflow.python.framework import config as tf_config  # no public getter/disable

    if deterministic:
        tf.config.experimental.enable_op_determinism()
    elif tf_config.is_op_determinism_enabled():  # an earlier run in this process turned it on
        tf_config.disable_op_determinism()
    on = bool(tf_config.is_op_determinism_enabled())
    return {"deterministic": on, "determinism": mechanism("tf", on), "op_determinism": on}


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
        determinism = _apply_determinism(deterministic)
        tf.config.experimental.enable_tensor_float_32_execution(tf32)
        return {
            "device": "gpu" if tf.config.list_physical_devices("GPU") else "cpu",
            "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
            "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
            **determinism,
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
        used_lr = self.b.sgd.set_lr(lr)
        if len(micro_batches) == 1:
            x, y = micro_batches[0]
            loss, ok = self._step(x, y)
            return StepResult(loss, ok, int(y.shape[0]), used_lr)  # on the device until read
        n = tf.constant(float(len(micro_batches)), tf.float32)
        total, losses, hits, count = None, [], [], 0
        for x, y in micro_batches:
            loss, ok, grads = self._grads(x, y, n)
            total = grads if total is None else [a + b for a, b in zip(total, grads, strict=True)]
            losses.append(loss)
            hits.append(ok)
            count += int(y.shape[0])
        self._apply(total)
        return StepResult(tf.add_n(losses), tf.add_n(hits), count, used_lr)

    def read_values(self, values: list) -> list[float]:
        """Device scalars -> Python numbers in one device-to-host copy."""
        return tf.stack([tf.cast(v, tf.float64) for v in values]).numpy().tolist()

    def peak_memory(self) -> tuple[int | None, str]:
        """Peak bytes on the first GPU (None on a CPU)."""
        if not tf.config.list_physical_devices("GPU"):
            return None, "cpu"
        peak = tf.config.experimental.get_memory_info("GPU:0")["peak"]
        return int(peak), "tf.config.experimental.get_memory_info peak"

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
