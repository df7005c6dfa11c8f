"""What lockstep parity reads from a Keras arm, in ``keras.ops`` terms (any Keras backend).

Gradients are captured inside the optimizer's own ``update_step`` into optimizer variables, so
they come back from whatever train step a Keras backend uses (a ``tf.function`` step, or
``stateless_apply`` under JAX) without a second forward/backward pass.
"""

from __future__ import annotations

import keras
import numpy as np

from fwbench.frameworks.keras.layers import flat_layers

STOCHASTIC_LAYERS = ("Dropout", "StochasticDepth")


def capture_gradients(optimizer, variables) -> list:
    """Make ``optimizer`` (built) keep each variable's last raw gradient; return the buffers.

    The gradient is stored as ``update_step`` receives it: after loss-scale undoing, before any
    weight decay the update adds.
    """
    store = optimizer.add_optimizer_variables(variables, "captured_gradient")
    inner = optimizer.update_step

    def update_step(gradient, variable, learning_rate):
        store[optimizer._get_variable_index(variable)].assign(
            keras.ops.cast(gradient, variable.dtype)
        )
        return inner(gradient, variable, learning_rate)

    optimizer.update_step = update_step
    return store


def disable_dropout(model) -> int:
    """Set every Dropout / StochasticDepth rate to 0 (before the first traced step)."""
    layers = [la for la in flat_layers(model) if type(la).__name__ in STOCHASTIC_LAYERS]
    for layer in layers:
        layer.rate = 0.0
    return len(layers)


def momentum_buffers(optimizer) -> list | None:
    """The optimizer's momentum variables, one per trainable variable (None if it has none)."""
    return getattr(optimizer, "momentums", None)


def to_numpy(values) -> list[np.ndarray]:
    """Keras tensors or variables as numpy arrays."""
    return [
        np.array(v.numpy()) if isinstance(v, keras.Variable) else keras.ops.convert_to_numpy(v)
        for v in values
    ]
