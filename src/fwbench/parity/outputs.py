"""Output parity of the ``matched`` models: same weights, same input, same logits.

For one model and input size: build the PyTorch model, give every normalisation statistic,
affine parameter, bias and ConvNeXt layer scale a random non-trivial value (at initialisation
they are 0 or 1 or 1e-6, so a wrong transfer of them would go unseen), transfer the weights to
the Keras mirror, run one random batch through both in eval mode, FP32, and compare logits.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from fwbench.registry.models import MODELS
from fwbench.registry.stems import INPUT_SIZES

RELATIVE_TOLERANCE = 1e-4  # max |Δ| must be <= this × max |logit|


@dataclass(frozen=True)
class OutputParity:
    """One model at one input size: how far apart the two arms' logits are."""

    model: str
    input_size: int
    num_classes: int
    max_abs_diff: float
    max_abs_logit: float
    relative: float  # max_abs_diff / max_abs_logit
    tolerance: float
    passed: bool

    def as_row(self) -> dict:
        """The result as a flat dict (table row)."""
        return asdict(self)


def perturb_for_parity(torch_model, seed: int = 0) -> None:
    """Give every 1-D parameter and BatchNorm statistic a random, non-trivial value.

    Scales (norm weights, running variances) go to U(0.5, 1.5), shifts (biases, running means)
    to N(0, 0.1²), ConvNeXt layer scales to U(0.05, 0.2): all remain sensible for eval.
    """
    import torch
    from torch import nn

    g = torch.Generator().manual_seed(seed)

    def uniform(t, lo, hi):
        t.copy_(lo + (hi - lo) * torch.rand(t.shape, generator=g))

    def normal(t, std):
        t.copy_(std * torch.randn(t.shape, generator=g))

    with torch.no_grad():
        for module in torch_model.modules():
            if isinstance(module, nn.BatchNorm2d | nn.LayerNorm):
                uniform(module.weight, 0.5, 1.5)
                normal(module.bias, 0.1)
            if isinstance(module, nn.BatchNorm2d):
                uniform(module.running_var, 0.5, 1.5)
                normal(module.running_mean, 0.1)
            if isinstance(module, nn.Conv2d | nn.Linear) and module.bias is not None:
                normal(module.bias, 0.1)
            if getattr(module, "layer_scale", None) is not None:
                uniform(module.layer_scale, 0.05, 0.2)


def compare_logits(
    torch_model, keras_model, input_size: int, batch: int = 2, seed: int = 0
) -> tuple[float, float]:
    """Run one random NCHW batch through both (eval mode); return (max |Δ|, max |torch logit|)."""
    from fwbench.frameworks.both import import_both

    torch, _, _, keras = import_both()
    x = np.random.default_rng(seed).standard_normal((batch, 3, input_size, input_size))
    x = x.astype(np.float32)
    torch_model.eval()
    with torch.no_grad():
        expected = torch_model(torch.from_numpy(x)).numpy()
    got = keras.ops.convert_to_numpy(keras_model(x.transpose(0, 2, 3, 1), training=False))
    return float(np.max(np.abs(expected - got))), float(np.max(np.abs(expected)))


def check_outputs(
    model: str, input_size: int, num_classes: int = 10, batch: int = 2, seed: int = 0
) -> OutputParity:
    """Build ``model`` in both arms (matched), transfer weights, compare eval-mode logits."""
    from fwbench.frameworks.both import import_both

    torch, _, _, keras = import_both()
    from fwbench.frameworks.keras.models import build_model as build_keras
    from fwbench.frameworks.pytorch.models import build_model as build_torch
    from fwbench.frameworks.transfer import transfer_weights

    torch.manual_seed(seed)
    torch_model = build_torch(model, num_classes, input_size, variant="matched").eval()
    perturb_for_parity(torch_model, seed)
    keras.backend.clear_session()
    keras_model = build_keras(model, num_classes, input_size, variant="matched")
    transfer_weights(torch_model, keras_model)

    max_diff, max_logit = compare_logits(torch_model, keras_model, input_size, batch, seed)
    relative = max_diff / max_logit
    return OutputParity(
        model=model,
        input_size=input_size,
        num_classes=num_classes,
        max_abs_diff=max_diff,
        max_abs_logit=max_logit,
        relative=relative,
        tolerance=RELATIVE_TOLERANCE,
        passed=bool(relative <= RELATIVE_TOLERANCE),
    )


def check_all_outputs(
    models: tuple[str, ...] = tuple(MODELS), sizes: tuple[int, ...] = INPUT_SIZES, **kwargs
) -> list[OutputParity]:
    """``check_outputs`` for every model and input size."""
    return [check_outputs(m, s, **kwargs) for m in models for s in sizes]
