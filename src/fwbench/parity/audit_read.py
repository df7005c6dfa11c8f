"""Read the architectural facts ``fwbench models audit`` compares off built models.

Every value here comes from the module/layer objects or their weights, never from a table
typed in by hand, so the audit stays true when a library changes a default.
"""

from __future__ import annotations

import numpy as np

from fwbench.frameworks.keras.layers import flat_layers

NONE = "—"
NO_STRIDED = "no strided conv wider than 1×1"


def _fmt(values) -> str:
    """A sorted, de-duplicated rendering of a collection of numbers/strings (``—`` if empty)."""
    vals = sorted({round(v, 8) if isinstance(v, float) else v for v in values}, key=str)
    return ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in vals) or NONE


def init_family(w: np.ndarray) -> str:
    """Name a weight tensor's distribution from its shape: zeros, constant, uniform or normal.

    Excess kurtosis tells the families apart: uniform −1.2, normal truncated at 2σ ≈ −0.6,
    normal 0. The measured standard deviation follows.
    """
    w = np.asarray(w, np.float64).ravel()
    if not w.any():
        return "zeros"
    std = float(w.std())
    if std < 1e-12:
        return f"constant {w[0]:g}"
    if w.size < 1000:  # too few values to tell the families apart
        return f"random, std {std:.4f}"
    kurt = float(np.mean(((w - w.mean()) / std) ** 4) - 3.0)
    family = "uniform" if kurt < -1.0 else "truncated normal" if kurt < -0.3 else "normal"
    return f"{family}, std {std:.4f}"


def _bottleneck_strides_torch(net) -> str:
    from torchvision.models.resnet import Bottleneck

    kernels = {
        f"{c.kernel_size[0]}×{c.kernel_size[1]} ({n})"
        for b in net.modules()
        if isinstance(b, Bottleneck)
        for n, c in (("conv1", b.conv1), ("conv2", b.conv2), ("conv3", b.conv3))
        if c.stride[0] > 1
    }
    return _fmt(kernels)


def describe_torch(net) -> dict[str, str]:
    """The audit's facts for a torchvision model."""
    from torch import nn
    from torchvision.ops import StochasticDepth

    mods = list(net.modules())
    convs = [m for m in mods if isinstance(m, nn.Conv2d)]
    bns = [m for m in mods if isinstance(m, nn.BatchNorm2d)]
    lns = [m for m in mods if isinstance(m, nn.LayerNorm)]
    linears = [m for m in mods if isinstance(m, nn.Linear)]
    strided = [c for c in convs if c.stride[0] > 1 and c.kernel_size[0] > 1]
    scales = [m.layer_scale for m in mods if getattr(m, "layer_scale", None) is not None]
    depths = [m.p for m in mods if isinstance(m, StochasticDepth)]
    body = max(convs[1:], key=lambda c: c.weight.numel())
    head = linears[-1]
    return {
        "conv bias": f"{sum(c.bias is not None for c in convs)} of {len(convs)} convs",
        "BatchNorm epsilon": _fmt(m.eps for m in bns),
        "BatchNorm momentum (PyTorch convention)": _fmt(float(m.momentum) for m in bns),
        "BN running variance": _variance_rule(_torch_update_ratio(m) for m in bns),
        "LayerNorm epsilon": _fmt(m.eps for m in lns),
        "strided conv padding (before/after)": _fmt(
            f"{c.padding[0]}/{c.padding[0]}" for c in strided
        ).replace(NONE, NO_STRIDED),
        "bottleneck stride on": _bottleneck_strides_torch(net),
        "stochastic depth": _depth_schedule(depths),
        "layer scale init": _fmt(float(v) for s in scales for v in s.detach().flatten().unique()),
        "classifier dropout": _fmt(m.p for m in mods if isinstance(m, nn.Dropout)),
        "stem conv init": init_family(convs[0].weight.detach().numpy()),
        "body conv init (largest conv)": init_family(body.weight.detach().numpy()),
        "classifier weight init": init_family(head.weight.detach().numpy()),
        "classifier bias init": init_family(head.bias.detach().numpy()),
        "stem": _stem_torch(net),
    }


# A probe batch for the running-variance rule: n = 2·2·2 = 8 values per channel, so the two
# rules' updates differ by n/(n−1) = 8/7.
_PROBE_SHAPE = (2, 2, 2)


def _variance_rule(ratios) -> str:
    """Name the running-variance update rule from measured update ratios (unbiased: n/(n−1))."""
    n = int(np.prod(_PROBE_SHAPE))
    names = {
        "unbiased (n/(n−1))" if abs(r - n / (n - 1)) < 1e-3 else "biased (n)" if abs(r - 1) < 1e-3
        else f"other (×{r:.4f})"
        for r in ratios
    }  # fmt: skip
    return _fmt(names)


def _probe(channels: int) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((*_PROBE_SHAPE, channels))  # NHWC


def _update_ratio(before: np.ndarray, after: np.ndarray, weight: float, x: np.ndarray) -> float:
    """How much the running variance moved, over what the biased batch variance would move it."""
    biased = x.reshape(-1, x.shape[-1]).var(axis=0)
    return float(np.median((after - (1 - weight) * before) / (weight * biased)))


def _torch_update_ratio(bn) -> float:
    """One training-mode step of a fresh copy of ``bn`` on a probe batch."""
    import copy

    import torch

    probe = copy.deepcopy(bn).double().train()
    probe.reset_running_stats()
    x = _probe(probe.num_features)
    before = probe.running_var.numpy().copy()
    with torch.no_grad():
        probe(torch.from_numpy(x.transpose(0, 3, 1, 2).copy()))
    return _update_ratio(before, probe.running_var.numpy(), float(probe.momentum), x)


def _keras_update_ratio(layer) -> float:
    """One training-mode step of a fresh layer of ``layer``'s class and config on a probe."""
    probe = layer.__class__.from_config({**layer.get_config(), "dtype": "float64"})
    x = _probe(int(layer.moving_variance.shape[0]))
    probe.build(x.shape)
    before = np.asarray(probe.moving_variance.numpy()).copy()
    probe(x, training=True)
    after = np.asarray(probe.moving_variance.numpy())
    return _update_ratio(before, after, 1.0 - probe.momentum, x)


# Where the first block starts, per naming scheme: the stem is everything before it.
_BLOCK_STARTS = (
    "features.1",
    "features-1",
    "layer1",
    "expanded_conv",
    "conv2_block1",
    "convnext_tiny_stage_0",
)


def _depth_schedule(rates: list[float]) -> str:
    rates = [r for r in rates if r is not None]
    if not any(rates):
        return "none"
    return f"{min(rates):g} → {max(rates):g} over {len(rates)} blocks"


def _stem_torch(net) -> str:
    from torch import nn

    parts = []
    for name, m in net.named_modules():
        if name.startswith(_BLOCK_STARTS):
            break
        if isinstance(m, nn.Conv2d):
            k, s = m.kernel_size[0], m.stride[0]
            parts.append(f"conv {k}×{k}/{s}" + (" +bias" if m.bias is not None else ""))
        elif isinstance(m, nn.BatchNorm2d):
            parts.append("BN")
        elif isinstance(m, nn.LayerNorm):
            parts.append("LN")
        elif isinstance(m, nn.ReLU6):
            parts.append("ReLU6")
        elif isinstance(m, nn.ReLU):
            parts.append("ReLU")
        elif isinstance(m, nn.MaxPool2d):
            parts.append(f"maxpool {m.kernel_size}/{m.stride}")
    return " → ".join(parts)


def _keras_stem_part(layer) -> str | None:
    kind = type(layer).__name__
    if kind in ("Conv2D", "DepthwiseConv2D"):
        k, s = layer.kernel_size[0], layer.strides[0]
        return f"conv {k}×{k}/{s}" + (" +bias" if layer.use_bias else "")
    if kind in ("BatchNormalization", "TorchBatchNormalization"):
        return "BN"
    if kind == "LayerNormalization":
        return "LN"
    if kind == "ReLU":
        return "ReLU6" if layer.max_value == 6 else "ReLU"
    if kind == "Activation" and layer.activation.__name__ == "relu":
        return "ReLU"
    if kind == "MaxPooling2D":
        return f"maxpool {layer.pool_size[0]}/{layer.strides[0]}"
    return None


def _keras_pads(layer) -> str:
    """Rows/cols padded before/after by a strided Keras conv, as ``"before/after"``."""
    k, s = layer.kernel_size[0], layer.strides[0]
    if layer.padding == "same":
        size = layer.input.shape[1]
        total = max((-(-size // s) - 1) * s + k - size, 0)  # TensorFlow's "same" rule
        return f"{total // 2}/{total - total // 2}"
    source = layer.input._keras_history.operation
    if type(source).__name__ == "ZeroPadding2D":
        (top, bottom), _ = source.padding
        return f"{top}/{bottom}"
    return "0/0"


def _bottleneck_strides_keras(layers) -> str:
    # Bottleneck convs are named conv{stage}_block{i}_{1,2,3}_conv in keras.applications and
    # layer{stage}-{i}-conv{1,2,3} in the mirrors; the shortcut projection (_0_conv /
    # downsample) is not where the main path's stride sits.
    def label(name: str) -> str:
        return name.rsplit("-", 1)[-1] if "-" in name else name.split("_", 2)[-1]

    kernels = {
        f"{la.kernel_size[0]}×{la.kernel_size[1]} ({label(la.name)})"
        for la in layers
        if ("_block" in la.name or la.name.startswith("layer"))
        and not (la.name.endswith("_0_conv") or "-downsample-" in la.name)
        and type(la).__name__ == "Conv2D"
        and la.strides[0] > 1
    }
    return _fmt(kernels)


def describe_keras(net) -> dict[str, str]:
    """The audit's facts for a Keras model (keras.applications or a mirror)."""
    layers = flat_layers(net)

    def of(*kinds):
        return [la for la in layers if type(la).__name__ in kinds]

    convs = of("Conv2D", "DepthwiseConv2D")
    bns = of("BatchNormalization", "TorchBatchNormalization")
    denses = of("Dense")
    strided = [c for c in convs if c.strides[0] > 1 and c.kernel_size[0] > 1]
    body = max(convs[1:], key=lambda c: int(np.prod(c.kernel.shape)))
    scales = [la.weights[0] for la in of("LayerScale")]
    stem = []
    for la in layers:
        if la.name.startswith(_BLOCK_STARTS):
            break
        stem.append(_keras_stem_part(la))
    dropouts = [la.rate for la in of("Dropout")]
    head = denses[-1]
    return {
        "conv bias": f"{sum(c.use_bias for c in convs)} of {len(convs)} convs",
        "BatchNorm epsilon": _fmt(la.epsilon for la in bns),
        "BatchNorm momentum (PyTorch convention)": _fmt(1.0 - la.momentum for la in bns),
        "BN running variance": _variance_rule(_keras_update_ratio(la) for la in bns),
        "LayerNorm epsilon": _fmt(la.epsilon for la in of("LayerNormalization")),
        "strided conv padding (before/after)": _fmt(_keras_pads(c) for c in strided).replace(
            NONE, NO_STRIDED
        ),
        "bottleneck stride on": _bottleneck_strides_keras(layers),
        "stochastic depth": _depth_schedule([la.rate for la in of("StochasticDepth")]),
        "layer scale init": _fmt(float(v) for w in scales for v in np.unique(np.asarray(w))),
        "classifier dropout": _fmt(dropouts),
        "stem conv init": init_family(np.asarray(convs[0].kernel)),
        "body conv init (largest conv)": init_family(np.asarray(body.kernel)),
        "classifier weight init": init_family(np.asarray(head.kernel)),
        "classifier bias init": init_family(np.asarray(head.bias)),
        "stem": " → ".join(p for p in stem if p),
    }
