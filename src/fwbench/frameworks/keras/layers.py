"""Walking a Keras model's layers (used by the parity accessors and the models audit)."""

from __future__ import annotations


def flat_layers(model) -> list:
    """Every leaf layer of a Keras model, nested Sequential/Functional blocks expanded."""
    out = []
    for layer in model.layers:
        out.extend(flat_layers(layer) if hasattr(layer, "layers") else [layer])
    return out
