"""Replay each arm's optimizer step with PyTorch's SGD rule, from what the arm itself reports.

A systematic optimizer error (a dropped weight decay, Keras' own momentum formulation, an LR
applied at half its value) hides in FP32 lockstep behind rounding noise that training chaos
amplifies. The step itself is not chaotic: given the arm's own weights before the step, its
own gradient (before weight decay) and its own momentum buffers, PyTorch's rule says exactly
what the new buffer must be, and the weight change ``Δp = -lr · d`` says which LR the optimizer
really applied. Both are read per step, per arm, in float64 over every parameter:

- buffer: ``b₁ = m·b₀ + g + wd·p₀``, ``‖b₁(arm) − b₁(rule)‖ / ‖b₁(rule)‖``
  (float32 rounding: ~1e-7; a dropped weight decay: ``wd·‖p‖/‖b‖``, ~1e-3);
- effective LR: ``d = g + wd·p₀ + m·b₁`` (Nesterov; ``b₁`` otherwise), and the LR is the
  least-squares fit ``−⟨Δp, d⟩ / ⟨d, d⟩`` of the arm's own weight change (its float32 rounding
  averages out over the ~2M parameters).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fwbench.parity.measures import BN_STATS


@dataclass(frozen=True)
class Rule:
    """PyTorch SGD's hyper-parameters, as the run's train config gives them."""

    momentum: float
    nesterov: bool
    weight_decay: float


@dataclass(frozen=True)
class Replay:
    """How far one arm's step is from PyTorch's rule applied to the arm's own inputs."""

    buffer_rel: float  # 0 without momentum
    effective_lr: float


def _flat(state: dict[str, np.ndarray], names: list[str]) -> np.ndarray:
    return np.concatenate([np.ravel(state[n]).astype(np.float64) for n in names])


def parameter_names(weights: dict[str, np.ndarray]) -> list[str]:
    """The trainable parameters of a ``Backend.weights()`` dict (BatchNorm statistics left out)."""
    return [
        k for k in weights if not k.endswith(BN_STATS) and not k.endswith("num_batches_tracked")
    ]


def replay_step(
    rule: Rule,
    before: dict[str, np.ndarray],
    after: dict[str, np.ndarray],
    grads: dict[str, np.ndarray],
    buffers_before: dict[str, np.ndarray],
    buffers_after: dict[str, np.ndarray],
) -> Replay:
    """Replay one step of one arm (weights, gradients and buffers by PyTorch name)."""
    names = [n for n in parameter_names(before) if n in grads]
    p0, p1, g = _flat(before, names), _flat(after, names), _flat(grads, names)
    g = g + rule.weight_decay * p0
    buffer_rel, d = 0.0, g
    if rule.momentum:
        b0 = (
            _flat(buffers_before, names)
            if all(n in buffers_before for n in names)
            else np.zeros_like(g)  # PyTorch's first step: b = g
        )
        expected = rule.momentum * b0 + g
        if all(n in buffers_after for n in names):
            b1 = _flat(buffers_after, names)
            buffer_rel = float(
                np.linalg.norm(b1 - expected) / max(np.linalg.norm(expected), 1e-300)
            )
        else:
            b1, buffer_rel = expected, float("inf")  # no PyTorch-convention buffer at all
        d = g + rule.momentum * b1 if rule.nesterov else b1
    dd = float(np.dot(d, d))
    effective = -float(np.dot(p1 - p0, d)) / dd if dd > 0 else 0.0
    return Replay(buffer_rel, effective)
