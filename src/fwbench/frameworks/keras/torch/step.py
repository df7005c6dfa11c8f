"""The keras-torch arm's step: torch autograd on the Keras model, as the Keras guide writes it.

"Writing a training loop from scratch in PyTorch" (Keras 3): ``logits = model(x,
training=True)``, ``loss.backward()``, gradients read from ``v.value.grad`` of each trainable
variable, ``optimizer.apply`` under ``torch.no_grad()``. Micro-batches accumulate into the same
``.grad`` buffers (each backward of mean loss / n), then one apply.

No host synchronisation of its own per step: the LR is written into its device variable by a
kernel (``fill_``, not a host-to-device copy), loss and hits stay on the device until the loop
reads them (``Backend.read_steps``), batches are pinned by the prefetch thread and copied
``non_blocking``, and the optimizer updates every variable at once with ``torch._foreach`` ops
(:func:`foreach_apply`, PyTorch's SGD rule exactly as ``TorchSGD.update_step`` writes it; the
per-variable ``keras.ops`` version copies each Python constant to the device, a synchronisation
each). What remains is Keras' own (scalar constants inside its layers), which Keras'
``train_on_batch`` pays too.

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
from keras.src.backend.torch.core import get_device

from fwbench.frameworks.base import StepResult
from fwbench.frameworks.keras.data_numpy import NumpyPipelines
from fwbench.frameworks.keras.losses import correct_count, loss_per_image, mean_loss
from fwbench.frameworks.pytorch.determinism_switches import apply as apply_determinism
from fwbench.recipe.inputs import RunInputs


class Step:
    """Autograd training step of one :class:`KerasBackend` on PyTorch."""

    def __init__(self, backend):
        self.b = backend

    def setup(self, threads: int, deterministic: bool, tf32: bool) -> dict[str, Any]:
        """Threads, deterministic algorithms, TF32; the runtime facts in effect."""
        torch.set_num_threads(threads)
        determinism = apply_determinism(deterministic)  # the pytorch arm's switches
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32
        return {
            "device": "gpu" if torch.cuda.is_available() else "cpu",
            "intra_op_threads": torch.get_num_threads(),
            "inter_op_threads": torch.get_num_interop_threads(),
            **determinism,
            "tf32": tf32,
        }

    def build(self, inputs: RunInputs) -> None:
        """Numpy pipelines (pinned tensors on CUDA), the fused SGD, the forward pass."""
        self.device = torch.device(get_device())
        pin = self.device.type == "cuda"
        self.pipelines = NumpyPipelines(inputs, convert=lambda batch: _tensors(batch, pin))
        self.b.sgd.fused_apply = foreach_apply
        model = self.b.model

        def forward(x):
            return model(x, training=True)

        self.forward = torch.compile(forward) if self.b.compiled else forward

    def train_step(self, micro_batches: list[Any], lr: float) -> StepResult:
        """One optimizer step at ``lr`` over ``micro_batches``."""
        b = self.b
        with torch.no_grad():  # a kernel writes it: no host-to-device copy, no synchronisation
            b.sgd.lr64.value.fill_(lr)
        used_lr = b.sgd.held_lr(lr)
        trainable = b.model.trainable_variables
        b.model.zero_grad(set_to_none=True)
        n = float(len(micro_batches))
        loss_sum = hits = None
        count = 0
        for x, y in micro_batches:
            x, y = self._device(x), self._device(y)
            logits = self.forward(x)
            loss = mean_loss(logits, y, b.label_smoothing)
            b.optimizer.scale_loss(loss / n).backward()
            ok = correct_count(logits.detach(), y)
            loss_sum = loss.detach() if loss_sum is None else loss_sum + loss.detach()
            hits = ok if hits is None else hits + ok
            count += int(y.shape[0])
        with torch.no_grad():
            b.optimizer.apply([v.value.grad for v in trainable], trainable)
        return StepResult(loss_sum, hits, count, used_lr)  # on the device until read

    def _device(self, t) -> torch.Tensor:
        if isinstance(t, np.ndarray):  # batches not from the pipelines (tests, bench)
            t = torch.from_numpy(t)
        return t.to(self.device, non_blocking=True)

    def read_values(self, values: list) -> list[float]:
        """Device scalars -> Python numbers in one device-to-host copy."""
        return torch.stack([v.detach().to(torch.float64) for v in values]).tolist()

    def peak_memory(self) -> tuple[int | None, str]:
        """Peak bytes allocated on the GPU (None on a CPU: the caller reports RSS)."""
        if self.device.type != "cuda":
            return None, "cpu"
        return int(torch.cuda.max_memory_allocated(self.device)), "torch.cuda.max_memory_allocated"

    def eval_batch(self, x, y):
        """Summed loss and class probabilities of one evaluation batch."""
        with torch.no_grad():
            logits = ops.cast(self.b.model(self._device(x), training=False), "float32")
            y = self._device(y)
            loss = ops.sum(loss_per_image(logits, y, 0.0))
            return float(loss), np.asarray(ops.convert_to_numpy(ops.softmax(logits, axis=-1)))

    def to_variables(self) -> None:
        """Nothing to do: the step updates the Keras variables in place."""

    def from_variables(self) -> None:
        """Nothing to do: the step reads the Keras variables themselves."""


def _tensors(batch, pin: bool) -> tuple[torch.Tensor, ...]:
    """A numpy batch as CPU tensors, page-locked for an asynchronous copy when ``pin``."""
    out = tuple(torch.from_numpy(a) for a in batch)
    return tuple(t.pin_memory() for t in out) if pin else out


@torch.no_grad()
def foreach_apply(sgd, grads: list, variables: list) -> None:
    """``TorchSGD``'s update of every variable in a few ``torch._foreach`` calls.

    ``g += wd * p;  b = m * b + g;  g = g + m * b (Nesterov) or b;  p -= lr * g``, the LR read
    from its device variable and cast to the weights' dtype; the iteration count advanced in
    place (what ``Optimizer.apply`` does with a host-to-device copy of 1).
    """
    pairs = [(gr, v) for gr, v in zip(grads, variables, strict=True) if gr is not None]
    variables = [v for _, v in pairs]  # as Keras' apply: variables without a gradient stay
    params = [v.value for v in variables]
    g = [gr.to(p.dtype) for (gr, _), p in zip(pairs, params, strict=True)]
    if sgd.l2:
        g = torch._foreach_add(g, torch._foreach_mul(params, sgd.l2))
    if sgd.momentum:
        bufs = [sgd.momentums[sgd._get_variable_index(v)].value for v in variables]
        torch._foreach_mul_(bufs, sgd.momentum)
        torch._foreach_add_(bufs, g)
        g = torch._foreach_add(g, torch._foreach_mul(bufs, sgd.momentum)) if sgd.nesterov else bufs
    for dtype in {p.dtype for p in params}:
        idx = [i for i, p in enumerate(params) if p.dtype == dtype]
        lr = sgd.lr64.value.to(dtype)
        torch._foreach_sub_([params[i] for i in idx], torch._foreach_mul([g[i] for i in idx], lr))
    sgd.iterations.value.add_(1)
