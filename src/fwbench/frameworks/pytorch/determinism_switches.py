"""The torch mechanism of the determinism rule (``fwbench.registry.determinism``).

Used by the pytorch arm and by Keras on torch (keras-torch), so both apply exactly the same
switches. ``CUBLAS_WORKSPACE_CONFIG`` only counts when set before CUDA starts: ``arms.activate``
sets it before torch is imported; here it is set as a fallback and read back.
"""

from __future__ import annotations

import os
from typing import Any

import torch

from fwbench.registry.determinism import CUBLAS_VALUE, CUBLAS_VAR, mechanism


def apply(deterministic: bool) -> dict[str, Any]:
    """Set torch's determinism switches; return what is in effect (``deterministic``, words)."""
    if deterministic and not torch.cuda.is_initialized():
        os.environ.setdefault(CUBLAS_VAR, CUBLAS_VALUE)
    torch.use_deterministic_algorithms(deterministic, warn_only=True)
    torch.backends.cudnn.deterministic = deterministic
    torch.backends.cudnn.benchmark = not deterministic
    cublas = os.environ.get(CUBLAS_VAR)
    in_effect = (
        torch.are_deterministic_algorithms_enabled()
        and torch.backends.cudnn.deterministic
        and (not torch.cuda.is_available() or cublas in (":4096:8", ":16:8"))
    )
    return {
        "deterministic": bool(in_effect),
        "determinism": mechanism("torch", bool(in_effect)),
        "cudnn_deterministic": torch.backends.cudnn.deterministic,
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "deterministic_warn_only": torch.is_deterministic_algorithms_warn_only_enabled(),
        "cublas_workspace_config": cublas,
    }
