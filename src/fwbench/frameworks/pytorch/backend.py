"""The PyTorch arm: model, SGD, AMP, accumulation, evaluation and checkpoints.

Optimizer: ``torch.optim.SGD(momentum, nesterov, weight_decay)``, the reference the Keras arm
reproduces. Its weight decay is L2 *coupled* into the gradient (``g += wd * p``) for every
parameter, BatchNorm and biases included (torch's default). The LR of each step is written into
the param groups by the shared loop before the step.

Precision (``fwbench.recipe.precision``, the rule every arm follows): ``fp32``, or ``amp`` =
autocast in ``training.amp_dtype`` (auto: float16 on CUDA, bfloat16 on a CPU), with
``GradScaler`` when that is float16; the classifier head runs outside autocast in float32 and
the loss sees float32 logits.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from fwbench.core.fileio import atomic_write
from fwbench.core.threads import thread_count
from fwbench.frameworks.base import (
    Backend,
    Evaluation,
    ModelBuilder,
    StepResult,
    seed_python_numpy,
)
from fwbench.frameworks.pytorch import data
from fwbench.frameworks.pytorch.determinism_switches import apply as apply_determinism
from fwbench.frameworks.pytorch.models import build_seeded, float32_head
from fwbench.recipe.inputs import RunInputs
from fwbench.recipe.precision import INITIAL_LOSS_SCALE, LOSS_SCALE_GROWTH_STEPS, resolve_precision
from fwbench.record.runs import RunSpec


def _full(logits: torch.Tensor) -> torch.Tensor:
    """Logits for the loss: float16/bfloat16 raised to float32, float64 kept."""
    return logits.to(torch.promote_types(logits.dtype, torch.float32))


def set_optimizer_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    """Set the learning rate of every parameter group (how the loop drives the schedule)."""
    for group in optimizer.param_groups:
        group["lr"] = lr


class TorchBackend(Backend):
    """PyTorch implementation of :class:`fwbench.frameworks.base.Backend`."""

    name = "pytorch"
    best_file = "best.pt"
    last_file = "last.pt"
    # Speed switches: None = the train config's value (``fwbench bench`` pins them explicitly).
    channels_last: bool | None = None
    tf32: bool | None = None
    compile: bool | None = None  # torch.compile the model for training (compile: compiled)

    def setup(self, spec: RunSpec) -> dict[str, Any]:
        """Seeds, threads and determinism switches; returns the settings in effect."""
        determinism = apply_determinism(spec.train_config.training.deterministic)
        threads = thread_count()
        torch.set_num_threads(threads)
        seed_python_numpy(spec.seed)
        torch.manual_seed(spec.seed)
        t = spec.train_config.training
        self.tf32 = t.tf32 if self.tf32 is None else self.tf32
        self.channels_last = t.channels_last if self.channels_last is None else self.channels_last
        self.compile = spec.compile == "compiled" if self.compile is None else self.compile
        torch.backends.cuda.matmul.allow_tf32 = self.tf32
        torch.backends.cudnn.allow_tf32 = self.tf32
        torch.set_float32_matmul_precision("high" if self.tf32 else "highest")
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.precision = resolve_precision(
            spec.precision, t.amp_dtype, "gpu" if self.device.type == "cuda" else "cpu"
        )
        self.amp = self.precision.amp
        self.amp_dtype = getattr(torch, self.precision.compute_dtype) if self.amp else None
        return {
            "device": str(self.device),
            "threads": threads,
            **determinism,
            **self.precision.facts(),
            "tf32": self.tf32,
            "channels_last": self.channels_last,
            "compile": "compiled" if self.compile else "eager",
            "execution": "torch.compile" if self.compile else "eager",
        }

    def build(self, spec: RunSpec, inputs: RunInputs) -> None:
        """Model on the device, SGD, GradScaler (float16 AMP only) and the three loaders."""
        self.model = build_seeded(
            spec.seed, spec.model, inputs.num_classes, spec.input_size, spec.variant,
            self.model_builder,
        )  # fmt: skip
        self.input_dtype = getattr(torch, self.dtype)
        self.loss_dtype = torch.promote_types(self.input_dtype, torch.float32)
        self.model.to(self.device, dtype=self.input_dtype)
        if self.amp:
            float32_head(self.model)
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        # compiled for training only: ``self.model`` keeps its plain state-dict keys
        self.train_model = torch.compile(self.model) if self.compile else self.model
        opt = spec.train_config.optimizer
        self.optimizer = torch.optim.SGD(
            self.model.parameters(),
            lr=0.0,
            momentum=opt.momentum,
            nesterov=opt.nesterov,
            weight_decay=opt.weight_decay,
        )
        self.scaler = torch.amp.GradScaler(
            self.device.type,
            init_scale=INITIAL_LOSS_SCALE,
            growth_interval=LOSS_SCALE_GROWTH_STEPS,
            enabled=self.precision.loss_scaling,
        )
        self.accumulation = inputs.plan.accumulation
        self.label_smoothing = spec.train_config.training.label_smoothing
        self.train_loader, self.sampler = data.train_loader(inputs)
        self.eval_loaders = {s: data.eval_loader(inputs, s) for s in ("val", "test")}
        self.loader_settings = data._loader_kwargs(inputs)

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp)

    def train_batches(self, epoch: int) -> Iterator[Any]:
        """The epoch's micro-batches (shared order and augmentation draws)."""
        self.sampler.set_epoch(epoch)
        return iter(self.train_loader)

    def set_lr(self, lr: float) -> None:
        """Set the learning rate of the next step."""
        set_optimizer_lr(self.optimizer, lr)

    def train_step(self, micro_batches: list[Any], lr: float) -> StepResult:
        """One SGD step: each micro-batch's mean loss / n back-propagated and summed."""
        if not self.model.training:
            self.model.train()
        self.set_lr(lr)
        self.optimizer.zero_grad(set_to_none=True)
        n = len(micro_batches)
        # float64 runs accumulate the loss in float64 (float32 otherwise, as autocast leaves it)
        loss_sum = torch.zeros((), device=self.device, dtype=self.loss_dtype)
        correct = torch.zeros((), dtype=torch.int64, device=self.device)
        count = 0
        for x, y in micro_batches:
            x = x.to(self.device, self.input_dtype, non_blocking=True)
            y = y.to(self.device, non_blocking=True)
            with self._autocast():
                logits = self.train_model(x)
            loss = F.cross_entropy(_full(logits), y, label_smoothing=self.label_smoothing)
            self.scaler.scale(loss / n).backward()
            loss_sum += loss.detach()
            correct += (logits.argmax(1) == y).sum()
            count += int(y.shape[0])
        used_lr = self.optimizer.param_groups[0]["lr"]
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return StepResult(loss_sum, correct, count, float(used_lr))  # on the device until read

    def read_values(self, values: list[Any]) -> list[float]:
        """Device scalars -> Python numbers in one device-to-host copy."""
        return torch.stack([v.detach().to(torch.float64) for v in values]).tolist()

    def peak_memory(self) -> tuple[int | None, str]:
        """Peak bytes allocated on the GPU (None on a CPU: the caller reports RSS)."""
        if self.device.type != "cuda":
            return None, "cpu"
        return int(torch.cuda.max_memory_allocated(self.device)), "torch.cuda.max_memory_allocated"

    @torch.no_grad()
    def evaluate(self, split: str) -> Evaluation:
        """Mean cross-entropy and class probabilities on ``split`` in eval mode."""
        self.model.eval()
        total, probs, n = 0.0, [], 0
        for x, y in self.eval_loaders[split]:
            x, y = x.to(self.device, self.input_dtype), y.to(self.device)
            with self._autocast():
                logits = self.model(x)
            total += float(F.cross_entropy(_full(logits), y, reduction="sum"))
            probs.append(F.softmax(_full(logits), dim=1).cpu().numpy())
            n += int(y.shape[0])
        return Evaluation(total / max(n, 1), np.concatenate(probs))

    def save_best(self, path: Path) -> None:
        """``torch.save`` of the model's state dict, atomically."""
        atomic_write(path, lambda p: torch.save(self.model.state_dict(), p))

    def load_best(self, path: Path) -> None:
        """Load a state dict written by :meth:`save_best`."""
        self.model.load_state_dict(torch.load(path, map_location=self.device, weights_only=True))

    def save_last(self, path: Path, meta: dict[str, Any]) -> None:
        """Model, optimizer, scaler and torch RNG state (CPU and CUDA), plus ``meta``."""
        state = {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            "meta": meta,
        }
        atomic_write(path, lambda p: torch.save(state, p))

    def load_last(self, path: Path) -> dict[str, Any]:
        """Restore what :meth:`save_last` wrote; return its ``meta``."""
        state = torch.load(path, map_location=self.device, weights_only=False)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["torch_rng"])
        if state["cuda_rng"]:
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        return state["meta"]

    def parameters_numpy(self) -> list[np.ndarray]:
        """Every trainable parameter as a numpy array (tests, parity)."""
        return [p.detach().cpu().numpy().copy() for p in self.model.parameters()]

    # --- parity accessors (framework-neutral layout: PyTorch names and layouts) --------------
    def stochastic_layers(self) -> list[tuple[str, str, float]]:
        """Every dropout / stochastic-depth module as (name, kind, rate), in module order."""
        from torchvision.ops import StochasticDepth

        kinds = {torch.nn.Dropout: "dropout", StochasticDepth: "stochastic_depth"}
        return [
            (name, kinds[type(m)], float(m.p))
            for name, m in self.model.named_modules()
            if type(m) in kinds
        ]

    def disable_dropout(self) -> int:
        """Dropout and stochastic depth off (lockstep parity: each arm would draw its own masks)."""
        from torchvision.ops import StochasticDepth

        layers = [
            m for m in self.model.modules() if isinstance(m, torch.nn.Dropout | StochasticDepth)
        ]
        for m in layers:
            m.p = 0.0
        return len(layers)

    def weights(self) -> dict[str, np.ndarray]:
        """Every parameter and BatchNorm statistic, by state-dict name."""
        from fwbench.frameworks.transfer import torch_state

        return torch_state(self.model)

    def gradients(self) -> dict[str, np.ndarray]:
        """The gradient of the last ``train_step`` (before weight decay), by parameter name."""
        return {n: _numpy(p.grad) for n, p in self.model.named_parameters() if p.grad is not None}

    def optimizer_state(self) -> dict[str, np.ndarray]:
        """The momentum buffer of each parameter, by parameter name."""
        state = self.optimizer.state
        return {
            n: _numpy(state[p]["momentum_buffer"])
            for n, p in self.model.named_parameters()
            if state.get(p, {}).get("momentum_buffer") is not None
        }


def _numpy(t: torch.Tensor) -> np.ndarray:
    return (
        t.detach().float().cpu().numpy()
        if t.dtype == torch.bfloat16
        else t.detach().cpu().numpy().copy()
    )


def make_backend(model_builder: ModelBuilder | None = None) -> TorchBackend:
    """A fresh PyTorch backend (``model_builder`` replaces the model registry, for tests)."""
    return TorchBackend(model_builder)
