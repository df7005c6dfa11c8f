"""SGD for the Keras arm with PyTorch's exact update rule (coupled L2, PyTorch-style Nesterov).

Why not ``keras.optimizers.SGD``: the two frameworks formulate momentum differently.

- PyTorch: ``g += wd * p;  b = m * b + g;  d = g + m * b (Nesterov) or b;  p -= lr * d``
- Keras 3: ``v = m * v - lr * g;  p += m * v - lr * g (Nesterov) or v``

They coincide only while the LR is constant (Keras folds the LR into the velocity), and the
runs change the LR every step (warmup + cosine). Keras's ``weight_decay`` is *decoupled*
(``p -= lr * wd * p`` after the step), not PyTorch's L2 in the gradient. So this optimizer
implements PyTorch's rule itself: weight decay is added to the gradient of **every** trainable
variable (BatchNorm gammas/betas and biases included, as torch's SGD does by default), and the
Keras ``weight_decay`` option stays off.

The LR is held in a float64 variable set by the shared loop before each step, so the value the
optimizer holds is bit-identical to the PyTorch arm's (a Python float); it is cast to the
variable's dtype when applied, as torch does. On JAX without x64 there is no float64: the
variable is float32 there, which changes nothing applied (every arm applies the LR in the
weights' float32; ``fwbench parity lr`` checks it). Being a Keras ``Optimizer``, it can be
wrapped in ``LossScaleOptimizer`` for AMP. Written in ``keras.ops`` only: the same code
updates the weights on every Keras backend.
"""

from __future__ import annotations

from collections.abc import Callable

import keras
import numpy as np
from keras import ops


def _lr_dtype() -> str:
    """float64 where the backend has it (JAX only with x64 on, else it would warn and round)."""
    if keras.backend.backend() == "jax":
        import jax

        return "float64" if jax.config.read("jax_enable_x64") else "float32"
    return "float64"


class TorchSGD(keras.optimizers.Optimizer):
    """SGD with momentum/Nesterov and coupled weight decay, updated as ``torch.optim.SGD``."""

    def __init__(
        self,
        momentum: float = 0.9,
        nesterov: bool = True,
        weight_decay: float = 0.0,
        name: str = "torch_sgd",
        **kwargs,
    ):
        super().__init__(learning_rate=0.0, name=name, **kwargs)
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)
        self.l2 = float(weight_decay)  # not ``weight_decay``: the base class would decouple it
        with keras.name_scope(self.name, caller=self):
            self.lr64 = keras.Variable(0.0, dtype=_lr_dtype(), trainable=False, name="lr64")
        self._track_variable(self.lr64)

    # A backend's step may install one update of all variables at once (keras-torch: torch
    # ``_foreach`` ops, as Keras' own torch optimizers do): the per-variable ``update_step`` in
    # ``keras.ops`` converts each Python constant to a device tensor, one host-to-device copy
    # (a device synchronisation under torch) per variable and constant. Same rule, same numbers.
    fused_apply: Callable[[TorchSGD, list, list], None] | None = None

    def _get_current_learning_rate(self):
        return self.lr64

    def set_lr(self, lr: float) -> float:
        """Set the learning rate of the next step; return the value held (read on the host)."""
        self.lr64.assign(lr)
        return self.held_lr(lr)

    def held_lr(self, lr: float) -> float:
        """``lr`` as the LR variable holds it (float64, or float32 on JAX without x64)."""
        return float(np.asarray(lr, dtype=self.lr64.dtype))

    def apply(self, grads, trainable_variables=None):
        """Keras' apply, or the installed :attr:`fused_apply` (weights, buffers, iterations)."""
        if self.fused_apply is None:
            return super().apply(grads, trainable_variables)
        variables = list(trainable_variables or self._trainable_variables)
        self.fused_apply(self, list(grads), variables)

    def build(self, variables):
        """Create one momentum buffer per variable (zeros: PyTorch's first-step ``b = g``)."""
        if self.built:
            return
        super().build(variables)
        self.momentums = self.add_optimizer_variables(variables, "momentum")

    def update_step(self, gradient, variable, learning_rate):
        """PyTorch's SGD update of one variable."""
        dtype = variable.dtype
        lr = ops.cast(learning_rate, dtype)
        g = ops.cast(gradient, dtype)
        # constants made in the variable's dtype: ``ops.cast`` of a Python float goes through
        # float32 on TensorFlow (0.9 -> 0.8999999761581421 in a float64 run)
        if self.l2:
            g = ops.add(g, ops.multiply(ops.convert_to_tensor(self.l2, dtype), variable))
        if self.momentum:
            m = ops.convert_to_tensor(self.momentum, dtype)
            buf = self.momentums[self._get_variable_index(variable)]
            self.assign(buf, ops.add(ops.multiply(buf, m), g))
            g = ops.add(g, ops.multiply(buf, m)) if self.nesterov else buf
        self.assign_sub(variable, ops.multiply(lr, g))

    def get_config(self):
        """Config for serialisation."""
        config = super().get_config()
        config.update(momentum=self.momentum, nesterov=self.nesterov, weight_decay=self.l2)
        return config
