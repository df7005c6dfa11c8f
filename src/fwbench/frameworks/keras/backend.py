"""The Keras arm (Keras 3 on TensorFlow): a GradientTape loop in ``tf.function``, not ``fit``.

Optimizer: :class:`~fwbench.frameworks.keras.optimizer.TorchSGD`, PyTorch's SGD update rule
with weight decay coupled into the gradient of every trainable variable (see that module).

Precision: ``fp32``, or ``amp`` = the ``mixed_float16`` policy + ``LossScaleOptimizer`` on a
GPU; on a CPU-only machine ``amp`` is ``mixed_bfloat16`` without loss scaling. Logits are cast
to float32 before the loss in every case.

Gradient accumulation: each micro-batch's gradients (of its mean loss / n) are computed in one
``tf.function`` and summed; a second ``tf.function`` applies the sum (the loss scale, if any,
only changes when it is applied, so the summed scaled gradients unscale correctly).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from fwbench.fileio import atomic_write
from fwbench.frameworks.base import (
    Backend,
    Evaluation,
    ModelBuilder,
    StepResult,
    thread_count,
)
from fwbench.frameworks.keras.data import KerasPipelines
from fwbench.frameworks.keras.optimizer import TorchSGD
from fwbench.inputs import RunInputs
from fwbench.runs import RunSpec


def _default_builder(model: str, num_classes: int, input_size: int, variant: str):
    from fwbench.frameworks.keras.models import build_model

    return build_model(model, num_classes, input_size, variant=variant)


def loss_per_image(logits: tf.Tensor, labels: tf.Tensor, label_smoothing: float) -> tf.Tensor:
    """Cross-entropy per image, as ``torch.nn.functional.cross_entropy(label_smoothing=...)``."""
    logp = tf.nn.log_softmax(tf.cast(logits, tf.float32), axis=-1)
    nll = -tf.gather(logp, labels, axis=1, batch_dims=1)
    if not label_smoothing:
        return nll
    return (1.0 - label_smoothing) * nll - label_smoothing * tf.reduce_mean(logp, axis=-1)


def _set_threads(threads: int) -> None:
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(min(threads, 2))
    except RuntimeError:  # TF already initialised in this process (in-process tests)
        pass


def _op_determinism_enabled() -> bool:
    """Whether TF op determinism is in effect (read back, not assumed)."""
    from tensorflow.python.framework import config as tf_config  # no public getter

    return bool(tf_config.is_op_determinism_enabled())


class KerasBackend(Backend):
    """Keras/TensorFlow implementation of :class:`fwbench.frameworks.base.Backend`."""

    name = "keras"
    best_file = "best.weights.h5"
    last_file = "last.npz"
    # Speed switch (``fwbench bench`` pins it; set before ``build``): XLA-compile the step.
    jit_compile = False
    tf32: bool | None = None  # None = the train config's value (``fwbench bench`` pins it)

    def setup(self, spec: RunSpec) -> dict[str, Any]:
        """Seeds, threads, op determinism and the precision policy; returns what is in effect."""
        threads = thread_count()
        _set_threads(threads)
        keras.utils.set_random_seed(spec.seed)  # Python, NumPy, TensorFlow and Keras' own
        deterministic = spec.train_config.training.deterministic
        if deterministic:
            tf.config.experimental.enable_op_determinism()
        if self.tf32 is None:
            self.tf32 = spec.train_config.training.tf32
        tf.config.experimental.enable_tensor_float_32_execution(self.tf32)
        self.gpu = bool(tf.config.list_physical_devices("GPU"))
        self.amp = spec.precision == "amp"
        policy = ("mixed_float16" if self.gpu else "mixed_bfloat16") if self.amp else "float32"
        keras.mixed_precision.set_global_policy(policy)
        return {
            "device": "gpu" if self.gpu else "cpu",
            "threads": threads,
            "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
            "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
            "op_determinism": _op_determinism_enabled(),
            "mixed_precision_policy": policy,
            "tf32": bool(tf.config.experimental.tensor_float_32_execution_enabled()),
            "amp_dtype": policy.removeprefix("mixed_") if self.amp else None,
            "loss_scaling": bool(self.amp and self.gpu),
        }

    def build(self, spec: RunSpec, inputs: RunInputs) -> None:
        """Model, TorchSGD (wrapped in LossScaleOptimizer for GPU AMP) and the pipelines."""
        builder = self.model_builder or _default_builder
        self.model = builder(spec.model, inputs.num_classes, spec.input_size, spec.variant)
        opt = spec.train_config.optimizer
        self.sgd = TorchSGD(opt.momentum, opt.nesterov, opt.weight_decay)
        scaled = self.amp and self.gpu
        self.optimizer = keras.optimizers.LossScaleOptimizer(self.sgd) if scaled else self.sgd
        self.optimizer.build(self.model.trainable_variables)
        self.label_smoothing = spec.train_config.training.label_smoothing
        self.pipelines = KerasPipelines(inputs)
        self._grads = tf.function(self._grads_impl, jit_compile=self.jit_compile)
        self._apply = tf.function(self._apply_impl, jit_compile=self.jit_compile)
        self._step = tf.function(self._step_impl, jit_compile=self.jit_compile)
        self._eval = tf.function(self._eval_impl, reduce_retracing=True)

    # --- the step ---------------------------------------------------------------------------
    def _grads_impl(self, x, y, n):
        with tf.GradientTape() as tape:
            logits = self.model(x, training=True)
            loss = tf.reduce_mean(loss_per_image(logits, y, self.label_smoothing))
            scaled = self.optimizer.scale_loss(loss / n)
        grads = tape.gradient(scaled, self.model.trainable_variables)
        correct = tf.reduce_sum(tf.cast(tf.argmax(logits, axis=-1) == y, tf.int64))
        return loss, correct, grads

    def _apply_impl(self, grads):
        self.optimizer.apply(grads, self.model.trainable_variables)

    def _step_impl(self, x, y):
        # One graph for a whole step (no accumulation): each variable's update can start as
        # soon as its gradient exists, and no host read splits the step (``fwbench bench``
        # measured the two-call path ~4% slower than a bare tf.function loop on CPU).
        loss, correct, grads = self._grads_impl(x, y, tf.constant(1.0, tf.float32))
        self._apply_impl(grads)
        return loss, correct

    def train_batches(self, epoch: int) -> Iterator[Any]:
        """The epoch's micro-batches (shared order and augmentation draws)."""
        return iter(self.pipelines.train(epoch))

    def set_lr(self, lr: float) -> None:
        """Set the learning rate of the next step."""
        self.sgd.set_lr(lr)

    def train_step(self, micro_batches: list[Any], lr: float) -> StepResult:
        """One SGD step: each micro-batch's mean loss / n differentiated, gradients summed."""
        self.set_lr(lr)
        if len(micro_batches) == 1:
            x, y = micro_batches[0]
            loss, ok = self._step(x, y)
            return StepResult(float(loss), int(ok), int(y.shape[0]), float(self.sgd.lr64.numpy()))
        n = tf.constant(float(len(micro_batches)), tf.float32)
        total, loss_sum, correct, count = None, 0.0, 0, 0
        for x, y in micro_batches:
            loss, ok, grads = self._grads(x, y, n)
            total = grads if total is None else [a + b for a, b in zip(total, grads, strict=True)]
            loss_sum += float(loss)
            correct += int(ok)
            count += int(y.shape[0])
        used_lr = float(self.sgd.lr64.numpy())
        self._apply(total)
        return StepResult(loss_sum, correct, count, used_lr)

    # --- evaluation -------------------------------------------------------------------------
    def _eval_impl(self, x, y):
        logits = tf.cast(self.model(x, training=False), tf.float32)
        return tf.reduce_sum(loss_per_image(logits, y, 0.0)), tf.nn.softmax(logits, axis=-1)

    def evaluate(self, split: str) -> Evaluation:
        """Mean cross-entropy and class probabilities on ``split`` in inference mode."""
        total, probs, n = 0.0, [], 0
        for x, y in self.pipelines.evaluation(split):
            loss, p = self._eval(x, y)
            total += float(loss)
            probs.append(p.numpy())
            n += int(y.shape[0])
        return Evaluation(total / max(n, 1), np.concatenate(probs))

    # --- checkpoints ------------------------------------------------------------------------
    def save_best(self, path: Path) -> None:
        """``model.save_weights`` (Keras wants the ``.weights.h5`` suffix), then rename."""
        tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.model.save_weights(tmp)
        os.replace(tmp, path)

    def load_best(self, path: Path) -> None:
        """Load weights written by :meth:`save_best`."""
        self.model.load_weights(path)

    def save_last(self, path: Path, meta: dict[str, Any]) -> None:
        """Every model variable (incl. BN statistics and dropout seed states), every optimizer
        variable (momentum, iterations, loss scale) and ``meta``, as npz.
        """
        arrays = {f"model_{i}": v.numpy() for i, v in enumerate(self.model.variables)}
        arrays |= {f"opt_{i}": v.numpy() for i, v in enumerate(self.optimizer.variables)}
        arrays["meta"] = np.array(json.dumps(meta))

        def write(p: Path) -> None:
            with open(p, "wb") as f:
                np.savez(f, **arrays)

        atomic_write(path, write)

    def load_last(self, path: Path) -> dict[str, Any]:
        """Restore what :meth:`save_last` wrote; return its ``meta``."""
        with np.load(path) as z:
            for i, v in enumerate(self.model.variables):
                v.assign(z[f"model_{i}"])
            for i, v in enumerate(self.optimizer.variables):
                v.assign(z[f"opt_{i}"])
            return json.loads(str(z["meta"]))

    def parameters_numpy(self) -> list[np.ndarray]:
        """Every trainable variable as a numpy array (tests, parity)."""
        return [v.numpy().copy() for v in self.model.trainable_variables]


def make_backend(model_builder: ModelBuilder | None = None) -> KerasBackend:
    """A fresh Keras backend (``model_builder`` replaces the model registry, for tests)."""
    return KerasBackend(model_builder)
