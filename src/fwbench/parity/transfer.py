"""Weight transfer PyTorch → Keras for the ``matched`` models (layers paired by name).

The Keras mirrors (``frameworks/keras/mirrors.py``) name each layer after the torchvision
module path (``.`` written ``-``), so a torch module ``layer1.0.conv2`` fills the Keras layer
``layer1-0-conv2``.
Every Keras layer with weights must be filled exactly once; anything unpaired is an error.
"""

from __future__ import annotations

import numpy as np


def _np(t) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float32)


def _module_weights(module) -> list[np.ndarray] | None:
    """The Keras weight list for one torch module, or None if it holds no weights itself."""
    from torch import nn

    if isinstance(module, nn.Conv2d):
        w = _np(module.weight)  # (out, in / groups, kh, kw)
        depthwise = module.groups > 1 and module.groups == module.in_channels == w.shape[0]
        # Keras: Conv2D (kh, kw, in, out); DepthwiseConv2D (kh, kw, channels, 1)
        kernel = w.transpose(2, 3, 0, 1) if depthwise else w.transpose(2, 3, 1, 0)
        return [kernel] + ([] if module.bias is None else [_np(module.bias)])
    if isinstance(module, nn.Linear):
        return [_np(module.weight).T] + ([] if module.bias is None else [_np(module.bias)])
    if isinstance(module, nn.BatchNorm2d):
        return [
            _np(t) for t in (module.weight, module.bias, module.running_mean, module.running_var)
        ]
    if isinstance(module, nn.LayerNorm):
        return [_np(module.weight), _np(module.bias)]
    return None


def transfer_weights(torch_model, keras_model) -> int:
    """Copy every weight of ``torch_model`` into the same-named layers of ``keras_model``.

    Returns the number of Keras layers filled. Raises ``ValueError`` when a torch module has
    no Keras counterpart, a shape differs, or a Keras layer with weights was left unfilled.
    """
    keras_layers = {layer.name: layer for layer in keras_model.layers}
    filled: set[str] = set()

    from fwbench.frameworks.keras.mirrors import layer_name

    def put(torch_path: str, weights: list[np.ndarray]) -> None:
        name = layer_name(torch_path)
        if name not in keras_layers:
            raise ValueError(f"torch module '{torch_path}' has no Keras layer '{name}'")
        keras_layers[name].set_weights(weights)  # raises on any shape mismatch
        filled.add(name)

    for name, module in torch_model.named_modules():
        weights = _module_weights(module)
        if weights is not None:
            put(name, weights)
        layer_scale = getattr(module, "layer_scale", None)  # torchvision CNBlock parameter
        if layer_scale is not None:
            put(f"{name}.layer_scale", [_np(layer_scale).reshape(-1)])
    unfilled = [n for n, layer in keras_layers.items() if layer.weights and n not in filled]
    if unfilled:
        raise ValueError(f"Keras layers left without torch weights: {unfilled[:5]}")
    return len(filled)
