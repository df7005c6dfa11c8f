"""The one place PyTorch and a Keras arm meet in one process (weight transfer, pixel parity).

torch/torchvision must be imported before TensorFlow: the other order segfaults (torchvision
loads triton through torch._dynamo; see notes/frameworks.md). Import both only through here.
Keras comes on the backend of ``arm`` (``KERAS_BACKEND`` is per process: the first call fixes
it); TensorFlow is imported only for the ``keras`` (TensorFlow) arm.
"""

from __future__ import annotations

import os


def import_both(arm: str | None = None):
    """Import torch, torchvision, then (TensorFlow and) Keras, in the safe order; return them.

    ``arm``: the Keras arm (None: the one ``KERAS_BACKEND`` names, else ``keras``).
    Returns ``(torch, torchvision, tensorflow or None, keras)``.
    """
    from fwbench.frameworks.arms import activate, arm_of_backend

    backend = activate(arm or arm_of_backend(os.environ.get("KERAS_BACKEND"))).keras_backend
    import torch
    import torchvision

    # isort: split
    # (the order above is load-bearing: ruff's import sorting must not move tensorflow first)
    tf = None
    if backend == "tensorflow":
        import tensorflow as tf
    import keras

    return torch, torchvision, tf, keras
