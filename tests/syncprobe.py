"""Child process of ``test_host_syncs``: train one arm and count its host synchronisations.

``python tests/syncprobe.py ARM WORKSPACE RUN_DIR`` (started with ``arms.arm_env(ARM)``) trains
the run in RUN_DIR on a linear model and prints one JSON line: the steps trained, the device-to-
host reads (and host-to-device copies of batch data) made inside ``train_step`` and inside
``read_steps``, and how often ``read_steps`` was called. Only the main thread is counted: the
prefetch thread converts batches by design, while the step computes.

What counts as a read, per runtime (each blocks the host until the device has caught up):
torch ``item``/``tolist``/``numpy``/``cpu``/``float()``/``int()``/``bool()``, and
``torch.as_tensor``/``torch.tensor`` of a numpy array (an un-pinned copy to the device); JAX any
materialisation of an array on the host (``ArrayImpl._value``; one ``jax.device_get`` is one);
TensorFlow ``EagerTensor._numpy`` (behind ``numpy()``, ``float()``, ``int()``).
"""

from __future__ import annotations

import json
import math
import sys
import threading
from pathlib import Path

import numpy as np

from fwbench.registry.arms import activate

COUNT = {"train_step": 0, "read_steps": 0, "reads": 0}
_where: list[str] = []
_main = threading.get_ident()


def _hit() -> None:
    if _where and threading.get_ident() == _main:
        COUNT[_where[-1]] += 1


def _counting(fn):
    def wrapper(*args, **kwargs):
        _hit()
        return fn(*args, **kwargs)

    return wrapper


def patch_torch() -> None:
    import torch

    for name in ("item", "tolist", "numpy", "cpu", "__float__", "__int__", "__bool__"):
        setattr(torch.Tensor, name, _counting(getattr(torch.Tensor, name)))
    for name in ("as_tensor", "tensor"):
        original = getattr(torch, name)

        def copy(data, *args, _original=original, **kwargs):
            if isinstance(data, np.ndarray):
                _hit()
            return _original(data, *args, **kwargs)

        setattr(torch, name, copy)


def patch_jax() -> None:
    import jax
    from jax._src import array

    prop = array.ArrayImpl._value
    inside = []

    def value(self):
        if not inside:
            _hit()
        return prop.fget(self)

    array.ArrayImpl._value = property(value)
    original = jax.device_get

    def device_get(x):
        _hit()
        inside.append(1)
        try:
            return original(x)
        finally:
            inside.pop()

    jax.device_get = device_get


def patch_tf() -> None:
    from tensorflow.python.framework import ops

    ops._EagerTensorBase._numpy = _counting(ops._EagerTensorBase._numpy)


def linear_builder(arm: str):
    """A bias-carrying linear classifier (no BatchNorm) in the arm's framework."""

    def build(model: str, num_classes: int, size: int, variant: str):
        if arm == "pytorch":
            import torch

            return torch.nn.Sequential(
                torch.nn.Flatten(), torch.nn.Linear(size * size * 3, num_classes)
            )
        import keras

        return keras.Sequential(
            [keras.Input((size, size, 3)), keras.layers.Flatten(), keras.layers.Dense(num_classes)]
        )

    return build


class Counting:
    """A real backend whose ``train_step`` and ``read_steps`` calls are counted apart."""

    def __init__(self, inner):
        self.inner = inner

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def train_step(self, micro_batches, lr):
        _where.append("train_step")
        try:
            return self.inner.train_step(micro_batches, lr)
        finally:
            _where.pop()

    def read_steps(self, results):
        COUNT["reads"] += 1
        _where.append("read_steps")
        try:
            return self.inner.read_steps(results)
        finally:
            _where.pop()


def main(arm: str, workspace: str, run_dir: str) -> None:
    from fwbench.core.paths import Workspace
    from fwbench.frameworks.base import load_backend
    from fwbench.record.runs import RunDir
    from fwbench.training import loop as training

    activate(arm)
    backend = load_backend(arm, linear_builder(arm))
    {"pytorch": patch_torch, "keras-torch": patch_torch, "keras-jax": patch_jax,
     "keras": patch_tf}[arm]()  # fmt: skip
    training.READ_EVERY_SECONDS = math.inf  # reads by step count only: a count independent of speed
    steps = []
    rd = RunDir(Path(run_dir))
    state = training.train_run(
        rd, Workspace(Path(workspace)), backend=Counting(backend), show_progress=False,
        on_step=lambda step, result: steps.append(result.loss_sum),
    )  # fmt: skip
    print(json.dumps({"state": state, "steps": len(steps), "epochs": len(rd.epochs()), **COUNT}))


if __name__ == "__main__":
    main(*sys.argv[1:])
