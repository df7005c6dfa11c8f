"""The keras-jax arm's step: ``jax.value_and_grad`` over ``model.stateless_call``, ``jax.jit``.

As the Keras guide "Writing a training loop from scratch in JAX" writes it: the model and
optimizer state live in JAX arrays held here (trainable, non-trainable, optimizer variables),
one jitted pure function maps state and batch to new state (``optimizer.stateless_apply``), and
the Keras variables are written back only when something reads them (evaluation uses the held
state too; checkpoints call :meth:`Step.to_variables`). The LR enters as the optimizer's ``lr64``
slot of the state, set before every step.

Execution: always ``jax.jit`` (compiled only): JAX has no practical op-by-op training mode and
Keras itself jit-compiles on JAX by default, so ``eager`` and ``compiled`` run the same code.
Input: the TensorFlow-free numpy pipeline. Threads: XLA's CPU pool is sized at start-up;
``$FWBENCH_THREADS=1`` turns its multi-threaded Eigen off (set before JAX is imported).
"""

from __future__ import annotations

import os
from typing import Any

import jax
import keras
import numpy as np
from keras import ops

from fwbench.frameworks.base import StepResult
from fwbench.frameworks.keras.data_numpy import NumpyPipelines
from fwbench.frameworks.keras.losses import correct_count, loss_per_image, mean_loss
from fwbench.recipe.inputs import RunInputs
from fwbench.registry.determinism import mechanism, xla_flag_on, xla_flags


def _device() -> str:
    return "gpu" if any(d.platform == "gpu" for d in jax.devices()) else "cpu"


class Step:
    """Stateless jitted training step of one :class:`KerasBackend` on JAX."""

    def __init__(self, backend):
        self.b = backend

    def setup(self, threads: int, deterministic: bool, tf32: bool) -> dict[str, Any]:
        """JAX's precision, the determinism rule's XLA flag, the runtime facts in effect."""
        from jax._src import xla_bridge

        flags = os.environ.get("XLA_FLAGS", "")
        started = xla_bridge.backends_are_initialized()
        if not started:  # normally ``arms.activate`` set it already; XLA reads it at start-up
            os.environ["XLA_FLAGS"] = flags = xla_flags(flags, deterministic)
        on = xla_flag_on(flags)
        device = _device()
        jax.config.update("jax_default_matmul_precision", "tensorfloat32" if tf32 else "highest")
        words = mechanism("jax", on)
        if device == "cpu":
            words += " (a GPU flag: XLA:CPU is deterministic either way)"
        return {
            "device": device,
            "xla_flags": flags,
            "deterministic": on,
            "determinism": words,
            "tf32": tf32,
        }

    def build(self, inputs: RunInputs) -> None:
        """Numpy pipelines, the held state and the jitted functions."""
        self.pipelines = NumpyPipelines(inputs)
        opt_vars = self.b.optimizer.variables
        self.lr_slots = [i for i, v in enumerate(opt_vars) if v is self.b.sgd.lr64]
        self.from_variables()
        grad_fn = jax.value_and_grad(self._loss, has_aux=True)
        self._grad_fn = grad_fn
        self._grads = jax.jit(self._grads_impl)
        self._apply = jax.jit(self._apply_impl, donate_argnums=(0, 1))
        self._step = jax.jit(self._step_impl, donate_argnums=(0, 1, 2))
        self._eval = jax.jit(self._eval_impl)

    # --- state ------------------------------------------------------------------------------
    def from_variables(self) -> None:
        """Take the state from the Keras variables (after build, load or a transfer)."""
        m, o = self.b.model, self.b.optimizer
        self.trainable = [v.value for v in m.trainable_variables]
        self.non_trainable = [v.value for v in m.non_trainable_variables]
        self.opt_vars = [v.value for v in o.variables]

    def to_variables(self) -> None:
        """Write the held state into the Keras variables (before save or inspection)."""
        m, o = self.b.model, self.b.optimizer
        for variables, values in (
            (m.trainable_variables, self.trainable),
            (m.non_trainable_variables, self.non_trainable),
            (o.variables, self.opt_vars),
        ):
            for v, value in zip(variables, values, strict=True):
                v.assign(value)

    # --- pure functions ---------------------------------------------------------------------
    def _loss(self, trainable, non_trainable, opt_vars, x, y, n):
        b = self.b
        logits, non_trainable = b.model.stateless_call(trainable, non_trainable, x, training=True)
        loss = mean_loss(logits, y, b.label_smoothing)
        mapping = list(zip(b.optimizer.variables, opt_vars, strict=True))
        with keras.StatelessScope(state_mapping=mapping):
            scaled = b.optimizer.scale_loss(loss / n)
        return scaled, (loss, correct_count(logits, y), non_trainable)

    def _grads_impl(self, trainable, non_trainable, opt_vars, x, y, n):
        (_, (loss, ok, non_trainable)), grads = self._grad_fn(
            trainable, non_trainable, opt_vars, x, y, n
        )
        return loss, ok, grads, non_trainable

    def _apply_impl(self, trainable, opt_vars, grads):
        return self.b.optimizer.stateless_apply(opt_vars, grads, trainable)

    def _step_impl(self, trainable, non_trainable, opt_vars, x, y):
        loss, ok, grads, non_trainable = self._grads_impl(
            trainable, non_trainable, opt_vars, x, y, 1.0
        )
        trainable, opt_vars = self._apply_impl(trainable, opt_vars, grads)
        return loss, ok, trainable, non_trainable, opt_vars

    def _eval_impl(self, trainable, non_trainable, x, y):
        logits, _ = self.b.model.stateless_call(trainable, non_trainable, x, training=False)
        logits = ops.cast(logits, "float32")
        return ops.sum(loss_per_image(logits, y, 0.0)), ops.softmax(logits, axis=-1)

    # --- the step ---------------------------------------------------------------------------
    def _set_lr(self, lr: float) -> float:
        dtype = self.opt_vars[self.lr_slots[0]].dtype
        value = jax.numpy.asarray(lr, dtype=dtype)  # sent to the device, never read back
        for i in self.lr_slots:
            self.opt_vars[i] = value
        return float(np.asarray(lr, dtype=dtype))

    def train_step(self, micro_batches: list[Any], lr: float) -> StepResult:
        """One optimizer step at ``lr`` over ``micro_batches``."""
        used_lr = self._set_lr(lr)
        count = sum(int(y.shape[0]) for _, y in micro_batches)
        if len(micro_batches) == 1:
            x, y = micro_batches[0]
            loss, ok, self.trainable, self.non_trainable, self.opt_vars = self._step(
                self.trainable, self.non_trainable, self.opt_vars, x, y
            )
            return StepResult(loss, ok, count, used_lr)  # on the device until read
        n = np.float32(len(micro_batches))
        total, losses, hits = None, [], []
        for x, y in micro_batches:
            loss, ok, grads, self.non_trainable = self._grads(
                self.trainable, self.non_trainable, self.opt_vars, x, y, n
            )
            total = grads if total is None else jax.tree.map(jax.numpy.add, total, grads)
            losses.append(loss)
            hits.append(ok)
        self.trainable, self.opt_vars = self._apply(self.trainable, self.opt_vars, total)
        return StepResult(sum(losses), sum(hits), count, used_lr)

    def read_values(self, values: list) -> list[float]:
        """Device scalars -> Python numbers (one ``jax.device_get`` for all)."""
        return [float(v) for v in jax.device_get(values)]

    def peak_memory(self) -> tuple[int | None, str]:
        """Peak bytes in use on the first GPU (None on a CPU)."""
        device = jax.devices()[0]
        stats = device.memory_stats() if device.platform == "gpu" else None
        if not stats or "peak_bytes_in_use" not in stats:
            return None, "cpu"
        return int(stats["peak_bytes_in_use"]), "jax memory_stats peak_bytes_in_use"

    def eval_batch(self, x, y):
        """Summed loss and class probabilities of one evaluation batch (from the held state)."""
        loss, preds = self._eval(self.trainable, self.non_trainable, x, y)
        return loss, np.asarray(preds)
