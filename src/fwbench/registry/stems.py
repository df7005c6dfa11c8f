"""How each model's stem is adapted to small images; one table both arms build from.

The ImageNet stems shrink the image 4× (ConvNeXt, ResNet-50) or 2× (MobileNetV2) before the
first block, which leaves almost nothing to classify at 32×32. Both arms read the same
``Stem`` from here, so the adaptation cannot drift between PyTorch and Keras.

| model         | ImageNet stem                      | input 32                  | input 64                  | map before pooling (32 / 64) |
|---------------|------------------------------------|---------------------------|---------------------------|------------------------------|
| mobilenetv2   | 3×3 conv, stride 2                 | 3×3 conv, stride 1        | 3×3 conv, stride 1        | 2×2 / 4×4                    |
| resnet50      | 7×7 conv s2 + 3×3 max-pool s2      | 3×3 conv s1, no max-pool  | 3×3 conv s1 + max-pool s2 | 4×4 / 4×4                    |
| convnext_tiny | 4×4 patchify conv, stride 4        | 2×2 patchify, stride 2    | 2×2 patchify, stride 2    | 2×2 / 4×4                    |

ResNet-50 keeps its max-pool at 64×64 so that the Tiny-ImageNet path ends in the 4×4 map the
seed asks for (64 / 2 / 8 = 4); at 32×32 the CIFAR convention (3×3 stride-1 stem, no max-pool)
gives the same 4×4. Everything after the stem is the library architecture, unchanged.
"""  # noqa: E501

from __future__ import annotations

from dataclasses import dataclass

from fwbench.core.errors import FwbenchError
from fwbench.registry.models import get_model

INPUT_SIZES = (32, 64)


@dataclass(frozen=True)
class Stem:
    """The first convolution (and max-pool) of one model at one input size."""

    kernel: int
    stride: int
    maxpool: bool  # ResNet-50 only: keep the 3×3 stride-2 max-pool after the stem
    final_map: int  # spatial size of the feature map before global pooling


_STEMS: dict[tuple[str, int], Stem] = {
    ("mobilenetv2", 32): Stem(kernel=3, stride=1, maxpool=False, final_map=2),
    ("mobilenetv2", 64): Stem(kernel=3, stride=1, maxpool=False, final_map=4),
    ("resnet50", 32): Stem(kernel=3, stride=1, maxpool=False, final_map=4),
    ("resnet50", 64): Stem(kernel=3, stride=1, maxpool=True, final_map=4),
    ("convnext_tiny", 32): Stem(kernel=2, stride=2, maxpool=False, final_map=2),
    ("convnext_tiny", 64): Stem(kernel=2, stride=2, maxpool=False, final_map=4),
}


def stem_for(model: str, input_size: int) -> Stem:
    """The stem ``model`` uses at ``input_size`` (32 or 64); other sizes are a user error."""
    get_model(model)
    if input_size not in INPUT_SIZES:
        raise FwbenchError(
            f"input size {input_size} has no stem adaptation; known: "
            f"{', '.join(map(str, INPUT_SIZES))}",
            fix="use 32 (CIFAR) or 64 (Tiny-ImageNet)",
        )
    return _STEMS[(model, input_size)]
