"""PyTorch arm's models: torchvision MobileNetV2, ResNet-50, ConvNeXt-Tiny, random init.

Only the stem changes (``fwbench.registry.stems``: the same table the Keras arm reads); class
heads are
torchvision's ``num_classes``. Defaults kept from torchvision (the "library" a user gets):
BatchNorm eps 1e-5, momentum 0.1; no conv bias in MobileNetV2/ResNet-50; ResNet-50 v1.5
(stride on the 3×3 conv); ConvNeXt stochastic depth 0.1, layer scale 1e-6; MobileNetV2
classifier dropout 0.2. Replaced stem convs get torchvision's own initialisation for that layer.

The ``matched`` variant is the same torchvision model: the Keras arm mirrors torchvision
(``frameworks/keras/mirrors.py``), so nothing changes on this side.
"""

from __future__ import annotations

import torch
from torch import nn

from fwbench.registry.models import VARIANTS, check_choice, get_model
from fwbench.registry.stems import stem_for


def mobilenetv2(num_classes: int, input_size: int, width_mult: float = 1.0):
    """torchvision ``mobilenet_v2`` with the small-image stem stride."""
    from torchvision.models import mobilenet_v2

    model = mobilenet_v2(num_classes=num_classes, width_mult=width_mult)
    stem = stem_for("mobilenetv2", input_size)
    model.features[0][0].stride = (stem.stride, stem.stride)  # same kernel and weights
    return model


def resnet50(num_classes: int, input_size: int):
    """torchvision ``resnet50`` (v1.5) with a 3×3 stem; max-pool kept only where the stem says."""
    from torchvision.models import resnet50 as tv_resnet50

    model = tv_resnet50(num_classes=num_classes)
    stem = stem_for("resnet50", input_size)
    model.conv1 = nn.Conv2d(
        3, 64, stem.kernel, stride=stem.stride, padding=stem.kernel // 2, bias=False
    )
    nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
    if not stem.maxpool:
        model.maxpool = nn.Identity()
    return model


def convnext_tiny(num_classes: int, input_size: int, stochastic_depth_prob: float = 0.1):
    """torchvision ``convnext_tiny`` with a smaller patchify stem."""
    from torchvision.models import convnext_tiny as tv_convnext_tiny

    model = tv_convnext_tiny(num_classes=num_classes, stochastic_depth_prob=stochastic_depth_prob)
    stem = stem_for("convnext_tiny", input_size)
    conv = nn.Conv2d(3, 96, stem.kernel, stride=stem.stride, bias=True)
    nn.init.trunc_normal_(conv.weight, std=0.02)  # torchvision ConvNeXt's init
    nn.init.zeros_(conv.bias)
    model.features[0][0] = conv
    return model


BUILDERS = {"mobilenetv2": mobilenetv2, "resnet50": resnet50, "convnext_tiny": convnext_tiny}


def build_model(model: str, num_classes: int, input_size: int, variant: str = "library"):
    """Build ``model`` for ``input_size``×``input_size`` images and ``num_classes`` logits.

    Returns a ``torch.nn.Module`` taking NCHW float input and returning logits (no softmax).
    """
    get_model(model)
    check_choice("variant", variant, VARIANTS)
    return BUILDERS[model](num_classes=num_classes, input_size=input_size)


def build_seeded(
    seed: int, model: str, num_classes: int, input_size: int, variant="library", builder=None
):
    """The arm's initial model for ``seed``: torch's RNG seeded, then ``builder`` (default
    :func:`build_model`) called. The PyTorch arm builds with it, and ``init: shared`` rebuilds
    the same weights with it in a Keras arm's process.
    """
    torch.manual_seed(seed)
    return (builder or build_model)(model, num_classes, input_size, variant)


class Float32Linear(nn.Linear):
    """A ``Linear`` that computes in float32 (or float64) even inside an autocast region.

    PyTorch's AMP guide: a region that must stay in float32 runs with autocast disabled and its
    inputs cast up. For the classifier head this keeps logits beyond float16's 65504 finite.
    """

    def forward(self, x):
        with torch.autocast(x.device.type, enabled=False):
            return super().forward(x.to(torch.promote_types(x.dtype, self.weight.dtype)))


def float32_head(model) -> None:
    """Make ``model``'s last ``Linear`` (its classifier head) compute in float32, in place.

    Its class is swapped rather than the module replaced: parameters, state-dict names and the
    RNG stream stay as they were.
    """
    heads = [m for m in model.modules() if type(m) is nn.Linear]
    if not heads:
        raise ValueError(f"{type(model).__name__} has no Linear classifier head")
    heads[-1].__class__ = Float32Linear
