"""The one place PyTorch and a Keras arm meet in one process (weight transfer, parity, shared init).

torch/torchvision must be imported before TensorFlow: the other order segfaults (torchvision
loads triton through torch._dynamo, and triton's compiled library crashes a process that
already holds TensorFlow; see docs/notes/frameworks.md). Import torch only through here.
Keras comes on the backend of ``arm`` (``KERAS_BACKEND`` is per process: the first call fixes
it); TensorFlow is imported only for the ``keras`` (TensorFlow) arm.
"""

from __future__ import annotations

import os
import sys


def import_torch():
    """Import torch and torchvision safely in any process; return them.

    Where TensorFlow is already loaded (a Keras arm that needs the PyTorch arm's initial
    weights), triton is blocked first: torch works without it on CPU, and loading it after
    TensorFlow is what segfaults.
    """
    if "tensorflow" in sys.modules and "torch" not in sys.modules:
        sys.modules.setdefault("triton", None)
    import torch
    import torchvision

    return torch, torchvision


def import_both(arm: str | None = None):
    """Import torch, torchvision, then (TensorFlow and) Keras, in the safe order; return them.

    ``arm``: the Keras arm (None: the one ``KERAS_BACKEND`` names, else ``keras``).
    Returns ``(torch, torchvision, tensorflow or None, keras)``.
    """
    from fwbench.registry.arms import activate, arm_of_backend

    backend = activate(arm or arm_of_backend(os.environ.get("KERAS_BACKEND"))).keras_backend
    torch, torchvision = import_torch()

    # isort: split
    # (the order above is load-bearing: ruff's import sorting must not move tensorflow first)
    tf = None
    if backend == "tensorflow":
        import fwbench.frameworks.keras  # noqa: F401  (imports TensorFlow without its notices)

        # isort: split
        import tensorflow as tf
    import keras

    return torch, torchvision, tf, keras
