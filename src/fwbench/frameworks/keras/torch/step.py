"""The keras-torch arm's step: torch autograd on the Keras model, as the Keras guide writes it.

"Writing a training loop from scratch in PyTorch" (Keras 3): ``logits = model(x,
training=True)``, ``loss.backward()``, gradients read from ``v.value.grad`` of each trainable
variable, ``optimizer.apply`` under ``torch.no_grad()``. Micro-batches accumulate into the same
``.grad`` buffers (each backward of mean loss / n), then one apply.

Execution: ``eager`` = plain PyTorch under Keras (Keras' default on torch); ``compiled`` =
the forward pass through ``torch.compile`` (the backward follows through AOTAutograd), the
same switch the pytorch arm flips. Input: the TensorFlow-free numpy pipeline. Compared with the
pytorch arm it keeps the runtime and changes only the API layer (Keras layers, initialisers,
the Keras-written optimizer).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from keras import ops

from fwbench.frameworks.base import StepResult
from fwbench.frameworks.keras.data_numpy import NumpyPipelines
from fwbench.frameworks.keras.losses import correct_count, loss_per_image
from fwbench.recipe.inputs import RunInputs


class Step:
    """Autograd training step of one :class:`KerasBackend` on PyTorch."""

    def __init__(self, backend):
        self.b = backend

    def setup(self, threads: int, deterministic: bool, tf32: bool) -> dict[str, Any]:
        """Threads, deterministic algorithms, TF32; the runtime facts in effect."""
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic, warn_only=True)
        torch.backends.cudnn.deterministic = deterministic
        torch.backends.cudnn.benchmark = not deterministic
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32
        return {
            "device": "gpu" if torch.cuda.is_available() else "cpu",
            "intra_op_threads": torch.get_num_threads(),
            "inter_op_threads": torch.get_num_interop_threads(),
            "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
            "tf32": tf32,
        }

    def build(self, inputs: RunInputs) -> None:
        """Numpy pipelines and the (maybe compiled) forward pass."""
        self.pipelines = NumpyPipelines(inputs)
        model = self.b.model

        def forward(x):
            return model(x, training=True)

        self.forward = torch.compile(forward) if self.b.compiled else forward

    def train_step(self, micro_batches: list[Any], lr: float) -> StepResult:
        """One optimizer step at ``lr`` over ``micro_batches``."""
        b = self.b
        b.sgd.set_lr(lr)
        trainable = b.model.trainable_variables
        b.model.zero_grad(set_to_none=True)
        n = float(len(micro_batches))
        loss_sum = hits = None
        count = 0
        for x, y in micro_batches:
            x, y = ops.convert_to_tensor(x), ops.convert_to_tensor(y)
            logits = self.forward(x)
            loss = ops.mean(loss_per_image(logits, y, b.label_smoothing))
            b.optimizer.scale_loss(loss / n).backward()
            ok = correct_count(logits.detach(), y)
            loss_sum = loss.detach() if loss_sum is None else loss_sum + loss.detach()
            hits = ok if hits is None else hits + ok
            count += int(y.shape[0])
        used_lr = float(b.sgd.lr64.value)
        with torch.no_grad():
            b.optimizer.apply([v.value.grad for v in trainable], trainable)
        return StepResult(float(loss_sum), int(hits), count, used_lr)

    def eval_batch(self, x, y):
        """Summed loss and class probabilities of one evaluation batch."""
        with torch.no_grad():
            logits = ops.cast(self.b.model(ops.convert_to_tensor(x), training=False), "float32")
            y = ops.convert_to_tensor(y)
            loss = ops.sum(loss_per_image(logits, y, 0.0))
            return float(loss), np.asarray(ops.convert_to_numpy(ops.softmax(logits, axis=-1)))

    def to_variables(self) -> None:
        """Nothing to do: the step updates the Keras variables in place."""

    def from_variables(self) -> None:
        """Nothing to do: the step reads the Keras variables themselves."""
