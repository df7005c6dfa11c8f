"""Parameter counts and forward shapes of both arms: the seed's ``param_comparison.csv``.

Both frameworks run in this one process (``frameworks/both.py`` imports torch first): each row
needs a model from each arm, and one process loads each framework once instead of paying the
imports per row or passing counts between subprocesses.

Counting convention, the same in both arms:
- trainable: PyTorch ``parameters()`` with ``requires_grad``; Keras ``trainable_weights``.
- total: trainable plus the non-trainable state a checkpoint carries (PyTorch BatchNorm
  ``running_mean``/``running_var`` buffers; Keras non-trainable weights, the moving statistics).
- diff %: |PyTorch − Keras| trainable parameters, relative to PyTorch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, replace

import numpy as np

from fwbench.registry.models import MODELS
from fwbench.registry.stems import INPUT_SIZES, stem_for

CLASS_COUNTS = (10, 100, 200)
BATCH = 2

# The torchvision module whose output is the feature map that global pooling averages.
_TORCH_FEATURES = {"mobilenetv2": "features", "resnet50": "layer4", "convnext_tiny": "features"}


@dataclass(frozen=True)
class ParamRow:
    """One (model, input size, classes) cell of the comparison."""

    model: str
    input_size: int
    num_classes: int
    variant: str
    pytorch_trainable_params: int
    pytorch_total_params: int
    keras_trainable_params: int
    keras_total_params: int
    diff_params: int
    diff_pct: float
    threshold_pct: float
    params_passed: bool
    pytorch_output_shape: str
    keras_output_shape: str
    pytorch_prepool_map: str
    keras_prepool_map: str
    expected_prepool_map: str
    shapes_passed: bool
    passed: bool
    # The same Keras builders on the other Keras backends (None: not checked); must equal keras'.
    keras_jax_trainable_params: int | None = None
    keras_torch_trainable_params: int | None = None
    backends_passed: bool = True

    def as_row(self) -> dict:
        """The row as a flat dict (CSV / table)."""
        return asdict(self)


def within_threshold(model: str, diff_pct: float) -> bool:
    """Whether ``diff_pct`` meets the seed's limit (MobileNetV2 ``<= 0``, others strict ``<``)."""
    info = MODELS[model]
    if info.threshold_inclusive:
        return diff_pct <= info.param_diff_threshold_pct
    return diff_pct < info.param_diff_threshold_pct


def _torch_facts(torch, net, model: str, size: int) -> tuple[int, int, tuple, tuple]:
    trainable = sum(p.numel() for p in net.parameters() if p.requires_grad)
    state = sum(
        b.numel() for n, b in net.named_buffers() if n.endswith(("running_mean", "running_var"))
    )
    total = sum(p.numel() for p in net.parameters()) + state
    seen = {}

    def record(_module, _inputs, out) -> None:  # returning None keeps the output unchanged
        seen["map"] = tuple(out.shape[2:])

    hook = net.get_submodule(_TORCH_FEATURES[model]).register_forward_hook(record)
    with torch.no_grad():
        out = net.eval()(torch.zeros(BATCH, 3, size, size))
    hook.remove()
    return trainable, total, tuple(out.shape), seen["map"]


def _keras_facts(keras, net, size: int) -> tuple[int, int, tuple, tuple]:
    trainable = sum(int(np.prod(w.shape)) for w in net.trainable_weights)
    total = sum(int(np.prod(w.shape)) for w in net.weights)
    pool = next(la for la in net.layers if isinstance(la, keras.layers.GlobalAveragePooling2D))
    out = net(np.zeros((BATCH, size, size, 3), np.float32), training=False)
    return trainable, total, tuple(out.shape), tuple(pool.input.shape[1:3])


def compare_one(model: str, input_size: int, num_classes: int, variant: str = "library"):
    """Build ``model`` in both arms; count parameters and check output and pre-pool shapes."""
    from fwbench.frameworks.both import import_both

    torch, _, _, keras = import_both()
    from fwbench.frameworks.keras.models import build_model as build_keras
    from fwbench.frameworks.pytorch.models import build_model as build_torch

    torch.manual_seed(0)
    pt = _torch_facts(
        torch, build_torch(model, num_classes, input_size, variant), model, input_size
    )
    keras.backend.clear_session()
    ks = _keras_facts(keras, build_keras(model, num_classes, input_size, variant), input_size)
    diff = abs(pt[0] - ks[0])
    diff_pct = 100.0 * diff / pt[0]
    final = stem_for(model, input_size).final_map
    expected_map = (final, final)
    shapes_ok = pt[2] == ks[2] == (BATCH, num_classes) and pt[3] == ks[3] == expected_map
    params_ok = within_threshold(model, diff_pct)
    return ParamRow(
        model=model,
        input_size=input_size,
        num_classes=num_classes,
        variant=variant,
        pytorch_trainable_params=pt[0],
        pytorch_total_params=pt[1],
        keras_trainable_params=ks[0],
        keras_total_params=ks[1],
        diff_params=diff,
        diff_pct=round(diff_pct, 6),
        threshold_pct=MODELS[model].param_diff_threshold_pct,
        params_passed=params_ok,
        pytorch_output_shape="x".join(map(str, pt[2])),
        keras_output_shape="x".join(map(str, ks[2])),
        pytorch_prepool_map="x".join(map(str, pt[3])),
        keras_prepool_map="x".join(map(str, ks[3])),
        expected_prepool_map="x".join(map(str, expected_map)),
        shapes_passed=shapes_ok,
        passed=params_ok and shapes_ok,
    )


def add_keras_backends(rows: list[ParamRow], arms: Iterable[str]) -> list[ParamRow]:
    """``rows`` with each Keras arm's trainable count (one process per arm); equal or fail.

    The Keras builders are backend-agnostic, so every backend must count exactly what
    TensorFlow counts; each arm builds every cell in its own process (``KERAS_BACKEND``).
    """
    from fwbench.parity.backends import run_in_arm

    cells = [[r.model, r.input_size, r.num_classes, r.variant] for r in rows]
    for arm in arms:
        counts = [c["trainable"] for c in run_in_arm(arm, "params", {"models": cells})["result"]]
        field = f"{arm.replace('-', '_')}_trainable_params"
        rows = [
            replace(
                r,
                **{field: n},
                backends_passed=r.backends_passed and n == r.keras_trainable_params,
                passed=r.passed and n == r.keras_trainable_params,
            )
            for r, n in zip(rows, counts, strict=True)
        ]
    return rows


def compare_all(
    variant: str = "library",
    models: Iterable[str] = tuple(MODELS),
    sizes: Iterable[int] = INPUT_SIZES,
    class_counts: Iterable[int] = CLASS_COUNTS,
    progress: Callable[[str], None] | None = None,
) -> list[ParamRow]:
    """``compare_one`` for every model × input size × class count (18 rows by default)."""
    rows = []
    for model in models:
        for size in sizes:
            for classes in class_counts:
                if progress:
                    progress(f"{model} {size}x{size} {classes} classes")
                rows.append(compare_one(model, size, classes, variant))
    return rows
