"""What lockstep parity measures between two arms' states: distances, divergences, layouts.

Pure numpy on the framework-neutral layout the backends' parity accessors return (PyTorch
state-dict names and layouts), so every check in ``train_checks.py`` reads numbers made here.
"""

from __future__ import annotations

import math

import numpy as np

BN_STATS = ("running_mean", "running_var")


def ratio(a: float, b: float) -> float:
    return a / b if b > 0 else (0.0 if a == 0 else math.inf)


def relative_norm(a: np.ndarray, b: np.ndarray) -> float:
    """||a - b|| / ||a|| in float64 (0 when both are 0)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return ratio(float(np.linalg.norm(a - b)), float(np.linalg.norm(a)))


def parameter_names(state: dict[str, np.ndarray]) -> list[str]:
    return [k for k in state if not k.endswith(BN_STATS)]


def weight_divergence(ref: dict[str, np.ndarray], other: dict[str, np.ndarray]) -> float:
    """||Δw|| / ||w|| over every parameter (BatchNorm statistics left out)."""
    names = parameter_names(ref)
    flat = [
        np.concatenate([np.ravel(s[n]).astype(np.float64) for n in names]) for s in (ref, other)
    ]
    return relative_norm(*flat)


def bn_divergence(ref: dict[str, np.ndarray], other: dict[str, np.ndarray]) -> tuple[float, float]:
    """Worst channel's BatchNorm running-mean and running-variance divergence.

    The mean in units of the channel's running standard deviation (means sit near 0, where a
    plain ratio is rounding noise; what BN's output sees is the shift over the scale), the
    variance as a ratio (it stays near 1; the channel with the widest batch variance shows a
    wrong update rule first).
    """
    means, variances = [0.0], [0.0]
    for k in ref:
        if k.endswith("running_var"):
            var = ref[k].astype(np.float64)
            mean = k.removesuffix("running_var") + "running_mean"
            shift = np.abs(ref[mean].astype(np.float64) - other[mean])
            means.append(float(np.max(shift / np.sqrt(var))))
            variances.append(float(np.max(np.abs(var - other[k]) / var)))
    return max(means), max(variances)


def as_nhwc(x, channels_first: bool) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu()
    x = np.asarray(x.numpy() if hasattr(x, "numpy") else x, np.float64)
    return x.transpose(0, 2, 3, 1) if channels_first else x


def dropout_differences(pytorch: list[tuple], keras: list[tuple]) -> list[str]:
    """Where the arms' dropout / stochastic-depth layers differ in placement, kind or rate."""
    pt = {name: (kind, rate) for name, kind, rate in pytorch}
    ks = {name: (kind, rate) for name, kind, rate in keras}
    out = []
    for name in dict.fromkeys([*pt, *ks]):
        a, b = pt.get(name), ks.get(name)
        if a is None or b is None or a[0] != b[0] or not math.isclose(a[1], b[1], abs_tol=1e-12):
            show = [f"{v[0]} {v[1]:g}" if v else "absent" for v in (a, b)]
            out.append(f"{name}: pytorch {show[0]} vs keras {show[1]}")
    if not out and [n for n, *_ in pytorch] != [n for n, *_ in keras]:
        out.append("same layers in a different order")
    return out


def classifier_name(state: dict[str, np.ndarray]) -> str:
    """The classifier's weight: the last 2-D parameter in PyTorch order."""
    return [k for k in parameter_names(state) if state[k].ndim == 2][-1]


def compare_batches(batches: dict[str, list]) -> tuple[float, bool]:
    """Max |Δ| between the arms' input tensors (NHWC) and whether the labels are equal."""
    worst, same = 0.0, True
    if any(len(b) != len(batches["pytorch"]) for b in batches.values()):
        return math.inf, False
    for k, (x_pt, y_pt) in enumerate(batches["pytorch"]):
        ref = as_nhwc(x_pt, channels_first=True)
        for arm, first in (("keras", False), ("control", True)):
            x, y = batches[arm][k]
            worst = max(worst, float(np.max(np.abs(ref - as_nhwc(x, first)))))
            same &= np.array_equal(np.asarray(y_pt), np.asarray(y))
    return worst, bool(same)
