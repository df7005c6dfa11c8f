"""The one place both frameworks meet in one process (weight transfer, pixel parity).

torch/torchvision must be imported before TensorFlow: the other order segfaults (torchvision
loads triton through torch._dynamo; see notes/frameworks.md). Import both only through here.
"""

from __future__ import annotations

import os


def import_both():
    """Import torch, torchvision, then tensorflow and keras, in the safe order; return them."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import torch
    import torchvision

    # isort: split
    # (the order above is load-bearing: ruff's import sorting must not move tensorflow first)
    import keras
    import tensorflow as tf

    return torch, torchvision, tf, keras
