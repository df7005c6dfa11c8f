"""The Keras arms (Keras 3 on TensorFlow, JAX or PyTorch): one backend, three train steps.

Shared by every Keras arm, written once in ``keras`` / ``keras.ops``: the model builders, the
optimizer (:class:`~fwbench.frameworks.keras.optimizer.TorchSGD`, PyTorch's SGD rule with
coupled weight decay), the loss, evaluation, precision policy and checkpoints (``.weights.h5``
for the best weights, an npz of every model and optimizer variable for resume). Only the step
differs, each written as the Keras custom-training-loop guide of its backend writes it
(``tensorflow/step.py``: ``GradientTape``; ``jax/step.py``: ``jax.value_and_grad`` over
``stateless_call``; ``torch/step.py``: torch autograd) together with its input pipeline
(tf.data for TensorFlow, the numpy pipeline elsewhere) and its runtime switches.

Which backend is in use is Keras' own (``KERAS_BACKEND``, set per process by
``fwbench.registry.arms.activate`` before Keras is imported).

Precision (``fwbench.recipe.precision``, the rule every arm follows): ``fp32``, or ``amp`` = the
``mixed_<amp_dtype>`` policy (auto: float16 on a GPU, bfloat16 on a CPU) with
``LossScaleOptimizer`` when that is float16. As the Keras mixed-precision guide prescribes, the
model's last layer (the classifier ``Dense``) computes in float32, and the loss and softmax
see float32 logits.
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keras
import numpy as np
from keras import ops

from fwbench.core.fileio import atomic_write
from fwbench.core.threads import thread_count
from fwbench.frameworks.base import Backend, Evaluation, ModelBuilder, StepResult
from fwbench.frameworks.keras import parity
from fwbench.frameworks.keras.losses import correct_count, loss_per_image  # noqa: F401
from fwbench.frameworks.keras.models import float32_head
from fwbench.frameworks.keras.optimizer import TorchSGD
from fwbench.recipe.inputs import RunInputs
from fwbench.recipe.precision import INITIAL_LOSS_SCALE, LOSS_SCALE_GROWTH_STEPS, resolve_precision
from fwbench.record.runs import RunSpec
from fwbench.registry.arms import ARMS, arm_of_backend


def keep_tensorflow_out() -> None:
    """On JAX or torch, tell Keras TensorFlow is absent, so nothing here imports it.

    Keras imports TensorFlow whenever it is installed, e.g. ``keras.utils.set_random_seed``
    seeds it "since many workflows leverage tf.data"; a keras-jax or keras-torch run must
    not load it (it would not isolate the Keras API from the TensorFlow runtime, and
    TensorFlow beside torchvision can crash: docs/notes/frameworks.md). Keras' lazy handle is
    marked unavailable, exactly what it records when TensorFlow is not installed.
    """
    if keras.backend.backend() != "tensorflow":
        from keras.src.utils import module_utils

        module_utils.tensorflow._available = False


keep_tensorflow_out()


def arm_name() -> str:
    """The arm this process's Keras backend makes (``keras``, ``keras-jax``, ``keras-torch``)."""
    return arm_of_backend(keras.backend.backend())


def _default_builder(model: str, num_classes: int, input_size: int, variant: str):
    from fwbench.frameworks.keras.models import build_model

    return build_model(model, num_classes, input_size, variant=variant)


class KerasBackend(Backend):
    """Keras 3 implementation of :class:`fwbench.frameworks.base.Backend`, any Keras backend."""

    best_file = "best.weights.h5"
    last_file = "last.npz"
    # Speed switches: None = the train config's value (``fwbench bench`` pins them).
    compile_mode: str | None = None
    tf32: bool | None = None

    def __init__(self, model_builder: ModelBuilder | None = None):
        super().__init__(model_builder)
        self.name = arm_name()
        # One folder per Keras backend (tensorflow/, jax/, torch/), chosen here only.
        module = importlib.import_module(f"fwbench.frameworks.keras.{keras.backend.backend()}.step")
        self.step = module.Step(self)

    @property
    def compiled(self) -> bool:
        """Whether the step runs in the compiled execution mode."""
        return self.compile_mode == "compiled"

    # Parity switch (set before ``build``): keep each step's gradients for ``gradients()``.
    capture_gradients = False

    def setup(self, spec: RunSpec) -> dict[str, Any]:
        """Seeds, threads, determinism and the precision policy; returns what is in effect."""
        t = spec.train_config.training
        self.compile_mode = self.compile_mode or spec.compile
        self.tf32 = t.tf32 if self.tf32 is None else self.tf32
        threads = thread_count()
        runtime = self.step.setup(threads, t.deterministic, self.tf32)
        keras.utils.set_random_seed(spec.seed)  # Python, NumPy, the backend and Keras' own
        self.gpu = runtime["device"] == "gpu"
        self.precision = resolve_precision(spec.precision, t.amp_dtype, runtime["device"])
        self.amp = self.precision.amp
        policy = f"mixed_{self.precision.compute_dtype}" if self.amp else self.dtype
        keras.config.set_floatx("float64" if self.dtype == "float64" else "float32")
        keras.mixed_precision.set_global_policy(policy)
        arm = ARMS[self.name]
        return {
            "threads": threads,
            **runtime,
            "keras_backend": keras.backend.backend(),
            "compile": self.compile_mode,
            "execution": arm.execution(self.compile_mode),
            "mixed_precision_policy": policy,
            **self.precision.facts(),
        }

    def build(self, spec: RunSpec, inputs: RunInputs) -> None:
        """Model, TorchSGD (in LossScaleOptimizer for float16), the step and its pipelines."""
        builder = self.model_builder or _default_builder
        self.model = builder(spec.model, inputs.num_classes, spec.input_size, spec.variant)
        if spec.init == "shared":  # the PyTorch arm's initial weights for this seed
            from fwbench.frameworks.transfer import load_keras_state, shared_initial_state

            load_keras_state(
                self.model,
                shared_initial_state(spec.model, inputs.num_classes, spec.input_size, spec.seed),
            )
        if self.amp:
            float32_head(self.model)
        opt = spec.train_config.optimizer
        self.sgd = TorchSGD(opt.momentum, opt.nesterov, opt.weight_decay)
        self.optimizer = self.sgd
        if self.precision.loss_scaling:
            self.optimizer = keras.optimizers.LossScaleOptimizer(
                self.sgd,
                initial_scale=INITIAL_LOSS_SCALE,
                dynamic_growth_steps=LOSS_SCALE_GROWTH_STEPS,
            )
        self.optimizer.build(self.model.trainable_variables)
        if self.capture_gradients:
            self._captured = parity.capture_gradients(self.sgd, self.model.trainable_variables)
        self.label_smoothing = spec.train_config.training.label_smoothing
        self.step.build(inputs)

    def train_batches(self, epoch: int) -> Iterator[Any]:
        """The epoch's micro-batches (shared order and augmentation draws)."""
        return iter(self.step.pipelines.train(epoch))

    def set_lr(self, lr: float) -> None:
        """Set the learning rate of the next step."""
        self.sgd.set_lr(lr)

    def train_step(self, micro_batches: list[Any], lr: float) -> StepResult:
        """One SGD step: each micro-batch's mean loss / n differentiated, gradients summed."""
        return self.step.train_step(micro_batches, lr)

    def read_values(self, values: list[Any]) -> list[float]:
        """Device scalars -> Python numbers in one device-to-host copy (the step's own way)."""
        return self.step.read_values(values)

    def peak_memory(self) -> tuple[int | None, str]:
        """Peak device memory of this backend's runtime (None on a CPU)."""
        return self.step.peak_memory()

    def evaluate(self, split: str) -> Evaluation:
        """Mean cross-entropy and class probabilities on ``split`` in inference mode."""
        total, probs, n = 0.0, [], 0
        for x, y in self.step.pipelines.evaluation(split):
            loss, p = self.step.eval_batch(x, y)
            total += float(loss)
            probs.append(np.asarray(p, np.float32))
            n += int(y.shape[0])
        return Evaluation(total / max(n, 1), np.concatenate(probs))

    # --- checkpoints ------------------------------------------------------------------------
    def save_best(self, path: Path) -> None:
        """``model.save_weights`` (Keras wants the ``.weights.h5`` suffix), then rename."""
        self.step.to_variables()
        tmp = path.with_name(f".tmp-{os.getpid()}-{path.name}")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.model.save_weights(tmp)
        os.replace(tmp, path)

    def load_best(self, path: Path) -> None:
        """Load weights written by :meth:`save_best`."""
        self.model.load_weights(path)
        self.step.from_variables()

    def save_last(self, path: Path, meta: dict[str, Any]) -> None:
        """Every model variable (incl. BN statistics and dropout seed states), every optimizer
        variable (momentum, iterations, loss scale) and ``meta``, as npz.
        """
        self.step.to_variables()
        arrays = {f"model_{i}": _numpy(v) for i, v in enumerate(self.model.variables)}
        arrays |= {f"opt_{i}": _numpy(v) for i, v in enumerate(self.optimizer.variables)}
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
            meta = json.loads(str(z["meta"]))
        self.step.from_variables()
        return meta

    def parameters_numpy(self) -> list[np.ndarray]:
        """Every trainable variable as a numpy array (tests, parity)."""
        self.step.to_variables()
        return [_numpy(v).copy() for v in self.model.trainable_variables]

    # --- parity accessors (framework-neutral layout: PyTorch names and layouts) --------------
    def stochastic_layers(self) -> list[tuple[str, str, float]]:
        """Every dropout / stochastic-depth layer as (PyTorch module name, kind, rate), in order."""
        return parity.stochastic_layers(self.model)

    def disable_dropout(self) -> int:
        """Dropout and stochastic depth off (lockstep parity: each arm would draw its own masks)."""
        return parity.disable_dropout(self.model)

    def weights(self) -> dict[str, np.ndarray]:
        """Every weight and BatchNorm statistic, by PyTorch state-dict name (matched models)."""
        from fwbench.frameworks.transfer import keras_state

        self.step.to_variables()  # JAX keeps the live state outside the variables
        return keras_state(self.model)

    def _named(self, values) -> dict[str, np.ndarray]:
        from fwbench.frameworks.transfer import keras_named

        self.step.to_variables()
        trainable = self.model.trainable_variables
        return keras_named(self.model, trainable, parity.to_numpy(values))

    def gradients(self) -> dict[str, np.ndarray]:
        """The gradient of the last ``train_step`` (needs ``capture_gradients`` before build)."""
        return self._named(self._captured)

    def optimizer_state(self) -> dict[str, np.ndarray]:
        """The momentum buffer of each trainable variable, by PyTorch parameter name."""
        buffers = parity.momentum_buffers(self.sgd)
        return {} if buffers is None else self._named(buffers)


def _numpy(v) -> np.ndarray:
    return np.asarray(ops.convert_to_numpy(v.value))  # the backend tensor, not the Variable


def make_backend(model_builder: ModelBuilder | None = None) -> KerasBackend:
    """A fresh Keras backend on this process's Keras backend (``model_builder``: for tests)."""
    return KerasBackend(model_builder)
