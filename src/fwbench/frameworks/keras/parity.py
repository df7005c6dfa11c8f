"""What lockstep parity reads from a Keras arm, in ``keras.ops`` terms (any Keras backend).

Gradients are captured where the optimizer's ``apply`` receives them, into optimizer variables,
so they come back from whatever train step a Keras backend uses (a ``tf.function`` step,
``stateless_apply`` under JAX, keras-torch's fused update) without a second forward/backward
pass.
"""

from __future__ import annotations

import keras
import numpy as np

from fwbench.frameworks.keras.layers import flat_layers

STOCHASTIC_LAYERS = {"Dropout": "dropout", "StochasticDepth": "stochastic_depth"}


def capture_gradients(optimizer, variables) -> list:
    """Make ``optimizer`` (built) keep each variable's last raw gradient; return the buffers.

    The gradients are stored as ``apply`` receives them (after loss-scale undoing, before any
    weight decay the update adds), whichever update then runs: Keras' per-variable
    ``update_step`` (TensorFlow, JAX) or a fused update a backend installs (keras-torch's
    ``_foreach`` SGD). ``apply`` is what every Keras step calls, ``stateless_apply`` included.
    """
    store = optimizer.add_optimizer_variables(variables, "captured_gradient")
    inner = optimizer.apply

    def apply(grads, trainable_variables=None):
        grads = list(grads)
        targets = list(trainable_variables or optimizer._trainable_variables)
        for gradient, variable in zip(grads, targets, strict=True):
            if gradient is not None:
                store[optimizer._get_variable_index(variable)].assign(
                    keras.ops.cast(gradient, variable.dtype)
                )
        return inner(grads, trainable_variables)

    optimizer.apply = apply
    return store


def stochastic_layers(model) -> list[tuple[str, str, float]]:
    """Each Dropout / StochasticDepth layer as (PyTorch module name, kind, rate), in model order.

    Matched mirrors name their layers after the torchvision modules, ``.`` written ``-``.
    """
    from fwbench.frameworks.keras.mirrors import SEP

    return [
        (la.name.replace(SEP, "."), STOCHASTIC_LAYERS[type(la).__name__], float(la.rate))
        for la in flat_layers(model)
        if type(la).__name__ in STOCHASTIC_LAYERS
    ]


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
