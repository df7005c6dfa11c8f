"""The small interface each arm implements; ``fwbench.training.loop`` drives it (framework-free).

An arm supplies only what is truly framework-specific: building the model and optimizer, one
optimizer step over its micro-batches, evaluation, checkpoints and its own RNG state. The
epoch loop, LR schedule, metrics, checkpoint rule and run directory are shared code.
"""

from __future__ import annotations

import importlib
import random
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from numbers import Number
from pathlib import Path
from typing import Any

import numpy as np

from fwbench.recipe.inputs import RunInputs
from fwbench.record.runs import RunSpec


@dataclass(frozen=True)
class StepResult:
    """What one optimizer step reports back to the loop.

    ``loss_sum`` and ``correct`` stay device values after the step (reading one back waits for
    the device: a synchronisation per step would starve a GPU); :meth:`Backend.read_steps`
    turns a batch of results into Python numbers with one copy.
    """

    loss_sum: Any  # sum over its micro-batches of each micro-batch's mean loss (unscaled)
    correct: Any  # correct top-1 predictions over all its micro-batches
    count: int  # images in the step
    lr: float  # the learning rate the optimizer held when it stepped (a host number)


@dataclass(frozen=True)
class Evaluation:
    """An evaluation pass: mean loss over all images and each image's class probabilities."""

    loss: float
    probabilities: np.ndarray  # (images, classes) softmax of the logits, float32

    @property
    def predictions(self) -> np.ndarray:
        """The top-1 class of each image."""
        return self.probabilities.argmax(axis=1)


# A model builder: (model, num_classes, input_size, variant) -> the arm's model object.
ModelBuilder = Callable[[str, int, int, str], Any]


class Backend(ABC):
    """One framework's half of a training run. Construct, then ``setup``, then ``build``."""

    name: str
    best_file: str  # file name of the best checkpoint in ``checkpoints/``
    last_file: str  # file name of the last (resumable) checkpoint

    def __init__(self, model_builder: ModelBuilder | None = None):
        self.model_builder = model_builder

    @abstractmethod
    def setup(self, spec: RunSpec) -> dict[str, Any]:
        """Seed every RNG, set thread counts and determinism switches; return what is in effect."""

    @abstractmethod
    def build(self, spec: RunSpec, inputs: RunInputs) -> None:
        """Build model, optimizer (and loss scaler), and the input pipelines."""

    @abstractmethod
    def train_batches(self, epoch: int) -> Iterator[Any]:
        """The epoch's micro-batches, in the shared order with the shared augmentation draws."""

    @abstractmethod
    def train_step(self, micro_batches: list[Any], lr: float) -> StepResult:
        """One optimizer step at ``lr``: gradients summed over ``micro_batches`` (loss / n)."""

    def read_values(self, values: list[Any]) -> list[float]:
        """Device scalars -> Python numbers (override: one device-to-host copy for all)."""
        return [float(v) for v in values]

    def read_steps(self, results: list[StepResult]) -> list[StepResult]:
        """``results`` with ``loss_sum`` and ``correct`` read to the host, all in one copy."""
        pending = [v for r in results for v in (r.loss_sum, r.correct) if not isinstance(v, Number)]
        values = iter(self.read_values(pending) if pending else [])

        def host(v: Any) -> float:
            return v if isinstance(v, Number) else next(values)

        return [
            replace(r, loss_sum=float(host(r.loss_sum)), correct=int(round(host(r.correct))))
            for r in results
        ]

    def peak_memory(self) -> tuple[int | None, str]:
        """Peak device memory in bytes and how it was read (None: no device, see RSS)."""
        return None, "cpu"

    @abstractmethod
    def evaluate(self, split: str) -> Evaluation:
        """Loss and predictions on ``val`` or ``test`` (eval mode, no augmentation)."""

    @abstractmethod
    def save_best(self, path: Path) -> None:
        """Write the model weights to ``path`` (atomically)."""

    @abstractmethod
    def load_best(self, path: Path) -> None:
        """Load model weights written by :meth:`save_best`."""

    @abstractmethod
    def save_last(self, path: Path, meta: dict[str, Any]) -> None:
        """Write weights, optimizer, loss-scaler and framework RNG state plus ``meta``."""

    @abstractmethod
    def load_last(self, path: Path) -> dict[str, Any]:
        """Restore everything :meth:`save_last` wrote; return its ``meta``."""

    # --- parity (fairness layer 4), read by ``fwbench parity train`` --------------------------
    # One framework-neutral layout: PyTorch state-dict names and PyTorch array layouts (the
    # matched Keras mirrors are named after the torchvision modules; ``parity/transfer.py``).
    dtype: str = "float32"  # "float64": the whole model in double precision (set before setup)

    def stochastic_layers(self) -> list[tuple[str, str, float]]:
        """Every dropout / stochastic-depth layer as (PyTorch module name, kind, rate), in order."""
        raise NotImplementedError(f"{self.name}: no lockstep parity")

    def disable_dropout(self) -> int:
        """Turn dropout and stochastic depth off (each arm would draw its own masks); count them."""
        raise NotImplementedError(f"{self.name}: no lockstep parity")

    def weights(self) -> dict[str, np.ndarray]:
        """Every parameter and BatchNorm running statistic, by PyTorch name and layout."""
        raise NotImplementedError(f"{self.name}: no lockstep parity")

    def gradients(self) -> dict[str, np.ndarray]:
        """Each parameter's gradient in the last :meth:`train_step` (before weight decay)."""
        raise NotImplementedError(f"{self.name}: no lockstep parity")

    def optimizer_state(self) -> dict[str, np.ndarray]:
        """Each parameter's momentum buffer, in PyTorch's convention (``b = m·b + g + wd·p``)."""
        raise NotImplementedError(f"{self.name}: no lockstep parity")


def load_backend(
    framework: str, model_builder: ModelBuilder | None = None, deterministic: bool | None = None
) -> Backend:
    """The backend of arm ``framework``; imports that framework only (Keras on its backend).

    ``deterministic``: set the determinism rule's environment first (it must precede the
    framework's start-up; ``registry.determinism``).
    """
    from fwbench.registry.arms import activate

    arm = activate(framework, deterministic)
    module = importlib.import_module(arm.module("backend"))
    return module.make_backend(model_builder)


def seed_python_numpy(seed: int) -> None:
    """Seed Python's and NumPy's global generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)


def host_rng_state() -> dict[str, Any]:
    """Python's and NumPy's global RNG state, as JSON-able data."""
    np_state = np.random.get_state(legacy=True)
    py_state = random.getstate()
    return {
        "python": [py_state[0], list(py_state[1]), py_state[2]],
        "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],
    }


def set_host_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`host_rng_state` returned."""
    v, internal, gauss = state["python"]
    random.setstate((v, tuple(internal), gauss))
    name, key, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(key, dtype=np.uint32), pos, has_gauss, cached))
