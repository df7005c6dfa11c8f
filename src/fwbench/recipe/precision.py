"""What ``precision: amp`` computes in, one rule for every arm (framework-free).

``amp`` runs the network in a 16-bit float (``training.amp_dtype``) with float32 master
weights; the classifier head and the loss stay in float32 in every arm (the frameworks'
mixed-precision guides: PyTorch casts logits to float32 before the loss, Keras keeps the last
layer in float32), so logits beyond float16's range (65504) do not turn into inf.

- ``auto``: float16 on a GPU (what the seed asks for: tensor cores, with loss scaling), bfloat16
  on a CPU (CPUs have bfloat16 kernels; bfloat16 has float32's exponent range, no scaling).
- ``float16`` / ``bfloat16``: that dtype on any device (a CPU run of ``float16`` is how tests
  exercise the GPU path). float16 always gets dynamic loss scaling, bfloat16 never.

Loss scaling starts at the same scale and follows the same rule in both arms: PyTorch's
``GradScaler`` would start at 2**16 and Keras' ``LossScaleOptimizer`` at 2**15, so both are
given :data:`INITIAL_LOSS_SCALE` (and each doubles after :data:`LOSS_SCALE_GROWTH_STEPS`
finite steps, halves on a non-finite one: both libraries' defaults, passed explicitly).
"""

from __future__ import annotations

from dataclasses import dataclass

AMP_DTYPES: tuple[str, ...] = ("auto", "float16", "bfloat16")  # training.amp_dtype's choices
INITIAL_LOSS_SCALE = 2.0**15
LOSS_SCALE_GROWTH_STEPS = 2000


@dataclass(frozen=True)
class Precision:
    """The dtype a run computes in and whether its loss is scaled."""

    amp: bool
    compute_dtype: str  # float32 for fp32 runs; float16 or bfloat16 for amp
    loss_scaling: bool

    def facts(self) -> dict[str, object]:
        """What ``env.json`` records about it (``amp_dtype`` None for fp32 runs)."""
        return {
            "amp_dtype": self.compute_dtype if self.amp else None,
            "loss_scaling": self.loss_scaling,
            "initial_loss_scale": INITIAL_LOSS_SCALE if self.loss_scaling else None,
        }


def resolve_precision(precision: str, amp_dtype: str, device: str) -> Precision:
    """The :class:`Precision` of a ``precision`` run with ``amp_dtype`` on ``device`` (gpu|cpu)."""
    if precision != "amp":
        return Precision(amp=False, compute_dtype="float32", loss_scaling=False)
    if amp_dtype == "auto":
        amp_dtype = "float16" if device == "gpu" else "bfloat16"
    if amp_dtype not in ("float16", "bfloat16"):
        raise ValueError(f"unknown amp_dtype {amp_dtype!r}; known: {', '.join(AMP_DTYPES)}")
    return Precision(amp=True, compute_dtype=amp_dtype, loss_scaling=amp_dtype == "float16")
