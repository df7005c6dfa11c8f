"""PyTorch ↔ Keras weights for the ``matched`` models, through one framework-neutral layout.

The neutral layout is PyTorch's state dict as numpy arrays: ``layer1.0.conv2.weight`` in
PyTorch's layout (conv ``(out, in/groups, kh, kw)``, linear ``(out, in)``), BatchNorm
``running_mean``/``running_var`` included. The Keras mirrors (``frameworks/keras/mirrors.py``)
name each layer after the torchvision module path (``.`` written ``-``: ``layer1-0-conv2``), so
a Keras layer's weights are ``<module path>.<torch parameter>``; ``_KERAS_WEIGHTS`` says, per
Keras layer kind, which torch parameter each of its weights is and how the layout converts.
Both transfer directions and the parity accessors of both backends (weights, gradients,
optimizer state) use this one map.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Convert = Callable[[np.ndarray], np.ndarray]


def _same(a: np.ndarray) -> np.ndarray:
    return a


def _transpose(*axes: int) -> Convert:
    return lambda a: a.transpose(axes)


_CONV = ("weight", _transpose(3, 2, 0, 1), _transpose(2, 3, 1, 0))  # (kh, kw, in, out)
_DEPTHWISE = ("weight", _transpose(2, 3, 0, 1), _transpose(2, 3, 0, 1))  # (kh, kw, C, 1)
_DENSE = ("weight", _transpose(1, 0), _transpose(1, 0))  # (in, out)
_BIAS = ("bias", _same, _same)
_NORM = (("weight", _same, _same), _BIAS)
_BN_STATS = (("running_mean", _same, _same), ("running_var", _same, _same))
_LAYER_SCALE = ("", lambda a: a.reshape(-1, 1, 1), lambda a: a.reshape(-1))  # torch (C, 1, 1)

# Keras layer class -> (torch parameter, keras->torch, torch->keras) per weight, in the order
# of ``layer.weights``. A LayerScale layer's own name is the torch parameter's name.
_KERAS_WEIGHTS: dict[str, tuple] = {
    "Conv2D": (_CONV, _BIAS),
    "DepthwiseConv2D": (_DEPTHWISE, _BIAS),
    "Dense": (_DENSE, _BIAS),
    "BatchNormalization": (*_NORM, *_BN_STATS),
    "TorchBatchNormalization": (*_NORM, *_BN_STATS),
    "LayerNormalization": _NORM,
    "LayerScale": (_LAYER_SCALE,),
}


def torch_path(layer_name: str) -> str:
    """The torchvision module path of a mirror layer (inverse of ``mirrors.layer_name``)."""
    from fwbench.frameworks.keras.mirrors import SEP

    return layer_name.replace(SEP, ".")


def keras_weight_map(keras_model) -> dict[str, tuple[str, Convert, Convert]]:
    """Keras variable path -> (neutral name, keras->torch, torch->keras) for every weight."""
    out = {}
    for layer in keras_model.layers:
        if not layer.weights:
            continue
        kind = type(layer).__name__
        if kind not in _KERAS_WEIGHTS:
            raise ValueError(f"Keras layer '{layer.name}' ({kind}) has no torch counterpart")
        # strict=False: a layer without bias has one weight fewer than its table row
        for w, (param, to_torch, to_keras) in zip(
            layer.weights, _KERAS_WEIGHTS[kind], strict=False
        ):
            path = torch_path(layer.name)
            name = f"{path}.{param}" if param else path
            out[w.path] = (name, to_torch, to_keras)
    return out


def keras_state(keras_model) -> dict[str, np.ndarray]:
    """Every weight of a matched Keras model (BN statistics included) in the neutral layout."""
    names = keras_weight_map(keras_model)
    return {
        names[w.path][0]: names[w.path][1](np.asarray(w.numpy()))
        for w in keras_model.weights
        if w.path in names
    }


def keras_named(keras_model, variables, values) -> dict[str, np.ndarray]:
    """``values`` (one array per Keras variable of ``variables``) in the neutral layout."""
    names = keras_weight_map(keras_model)
    return {
        names[v.path][0]: names[v.path][1](np.asarray(x))
        for v, x in zip(variables, values, strict=True)
    }


def torch_state(torch_model) -> dict[str, np.ndarray]:
    """A torch model's state dict as numpy arrays (the neutral layout), batch counters left out."""
    return {
        k: v.detach().cpu().numpy().copy()
        for k, v in torch_model.state_dict().items()
        if not k.endswith("num_batches_tracked")
    }


def load_keras_state(keras_model, state: dict[str, np.ndarray]) -> int:
    """Fill a matched Keras model from a neutral ``state``; return the number of layers filled.

    Raises ``ValueError`` when a torch module has no Keras layer of its name, a shape differs,
    or a Keras layer with weights would be left unfilled.
    """
    names = keras_weight_map(keras_model)
    by_layer: dict[str, list] = {}
    for layer in keras_model.layers:
        if layer.weights:
            by_layer[layer.name] = [names[w.path] for w in layer.weights]
    expected = {n for entries in by_layer.values() for n, _, _ in entries}
    extra = sorted(set(state) - expected)
    if extra:
        module = extra[0].removesuffix(".layer_scale").rsplit(".", 1)[0]
        raise ValueError(f"torch module '{module}' has no Keras layer of that name")
    unfilled = [layer for layer, entries in by_layer.items() if entries[0][0] not in state]
    if unfilled:
        raise ValueError(f"Keras layers left without torch weights: {unfilled[:5]}")
    for layer in keras_model.layers:
        if layer.name in by_layer:
            # set_weights raises on any shape mismatch
            layer.set_weights([to_keras(state[n]) for n, _, to_keras in by_layer[layer.name]])
    return len(by_layer)


def transfer_weights(torch_model, keras_model) -> int:
    """Copy every weight of ``torch_model`` into the same-named layers of ``keras_model``.

    Returns the number of Keras layers filled (errors as :func:`load_keras_state`).
    """
    return load_keras_state(keras_model, torch_state(torch_model))


def shared_initial_state(
    model: str, num_classes: int, input_size: int, seed: int
) -> dict[str, np.ndarray]:
    """The PyTorch arm's initial matched weights for ``seed``, built here (``init: shared``).

    Built by the PyTorch arm's own seeded builder, inside ``fork_rng`` so the caller's torch
    RNG (a keras-torch arm's) is left as it was. Imports torch safely in any process.
    """
    from fwbench.frameworks.both import import_torch

    torch, _ = import_torch()
    from fwbench.frameworks.pytorch.models import build_seeded

    with torch.random.fork_rng(devices=[]):
        net = build_seeded(seed, model, num_classes, input_size, variant="matched")
    return torch_state(net)
