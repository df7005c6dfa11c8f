"""The registry of arms: which framework stack each ``framework`` name means (framework-free).

An arm is a framework stack. Four exist:

========== ================= ======================================= =============================
arm        package           execution ``eager``                     execution ``compiled``
========== ================= ======================================= =============================
pytorch    frameworks/pytorch eager PyTorch                          ``torch.compile`` (model)
keras      frameworks/keras  ``tf.function`` graph (Keras' default)  ``tf.function(jit_compile)``
                             on TensorFlow                           (XLA)
keras-jax  frameworks/keras  ``jax.jit`` (Keras' default on JAX)     ``jax.jit`` (the same)
keras-torch frameworks/keras eager PyTorch under Keras               ``torch.compile`` (forward)
========== ================= ======================================= =============================

``keras-tf`` is another spelling of ``keras``. ``eager`` means each stack's default way to
train (what ``model.fit`` does with ``jit_compile="auto"``), ``compiled`` its compiler (what
``jit_compile=True`` does). Keras on JAX is **compiled only**: JAX has no practical op-by-op
training mode, so both modes run ``jax.jit`` and its rows say so (``execution``).

The three Keras arms share one package; ``KERAS_BACKEND`` selects the backend and is read once,
when Keras is first imported, so it is per process: :func:`activate` sets it before anything
imports Keras, and refuses if Keras was already imported on another backend.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

from fwbench.core.errors import FwbenchError

COMPILE_MODES = ("eager", "compiled")
_ONE_THREAD = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


@dataclass(frozen=True)
class Arm:
    """One framework stack the comparison can train."""

    name: str
    package: str  # the folder under ``fwbench/frameworks`` holding its backend
    keras_backend: str | None  # ``KERAS_BACKEND`` of a Keras arm, None for PyTorch
    isolates: str  # what comparing it with PyTorch isolates (README, report)
    eager: str  # the execution mechanism of ``compile: eager``
    compiled: str  # ... and of ``compile: compiled``

    def module(self, kind: str) -> str:
        """The dotted path of this arm's ``kind`` module (``backend``, ``bench``, ``envinfo``)."""
        return f"fwbench.frameworks.{self.package}.{kind}"

    def execution(self, compile_mode: str) -> str:
        """The mechanism that runs the step in ``compile_mode`` (``eager`` | ``compiled``)."""
        return self.compiled if compile_mode == "compiled" else self.eager

    @property
    def imports(self) -> tuple[str, ...]:
        """The top-level framework modules a run of this arm loads."""
        return {
            None: ("torch",),
            "tensorflow": ("tensorflow", "keras"),
            "jax": ("jax", "keras"),
            "torch": ("torch", "keras"),
        }[self.keras_backend]


ARMS: dict[str, Arm] = {
    a.name: a
    for a in (
        Arm("pytorch", "pytorch", None, "the reference", "eager", "torch.compile"),
        Arm(
            "keras", "keras", "tensorflow", "Keras API + TensorFlow runtime",
            "tf.function", "tf.function(jit_compile=True) (XLA)",
        ),
        Arm("keras-jax", "keras", "jax", "Keras API + JAX/XLA runtime", "jax.jit", "jax.jit"),
        Arm(
            "keras-torch", "keras", "torch", "Keras API alone (same PyTorch runtime)",
            "eager", "torch.compile",
        ),
    )
}  # fmt: skip
ALIASES = {"keras-tf": "keras"}
FRAMEWORKS = tuple(ARMS)
KERAS_ARMS = tuple(n for n, a in ARMS.items() if a.keras_backend)


def canonical(name: str) -> str:
    """The registry name of ``name`` (``keras-tf`` -> ``keras``); unknown names unchanged."""
    return ALIASES.get(name, name)


def get_arm(name: str) -> Arm:
    """The arm called ``name`` (aliases accepted); unknown names are a user error."""
    arm = ARMS.get(canonical(name))
    if arm is None:
        known = ", ".join([*ARMS, *ALIASES])
        raise FwbenchError(f"unknown framework '{name}'; known: {known}", fix="use a known arm")
    return arm


def arm_of_backend(keras_backend: str | None) -> str:
    """The Keras arm of ``keras_backend`` (None: Keras' default, TensorFlow)."""
    wanted = keras_backend or "tensorflow"
    return next(a.name for a in ARMS.values() if a.keras_backend == wanted)


def arm_env(
    name: str, threads: str | None = None, deterministic: bool | None = None
) -> dict[str, str]:
    """Environment variables a process of arm ``name`` must start with (subprocess launches).

    ``threads``: the process's compute threads (None: ``$FWBENCH_THREADS``/``$OMP_NUM_THREADS``).
    ``deterministic``: the determinism rule's variables (``registry.determinism``); None
    leaves them as they are.
    """
    from fwbench.registry.determinism import environment

    arm = get_arm(name)
    env = {"TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2")}
    if arm.keras_backend:
        env["KERAS_BACKEND"] = arm.keras_backend
    if deterministic is not None:
        env |= environment(arm.name, deterministic, os.environ)
    flags = env.get("XLA_FLAGS", os.environ.get("XLA_FLAGS", ""))
    threads = threads or os.environ.get("FWBENCH_THREADS") or os.environ.get("OMP_NUM_THREADS")
    if arm.keras_backend == "jax" and threads == "1" and _ONE_THREAD not in flags:
        env["XLA_FLAGS"] = f"{flags} {_ONE_THREAD}".strip()  # XLA sizes its pool at start-up
    return env


def activate(name: str, deterministic: bool | None = None) -> Arm:
    """Prepare this process for arm ``name``: set ``KERAS_BACKEND`` (and the determinism rule's
    variables, when ``deterministic`` is given) before Keras or the framework is imported.

    Keras reads the variable once, at its first import; a process that already imported Keras
    on another backend cannot switch (run that arm in its own process).
    """
    arm = get_arm(name)
    os.environ.update(arm_env(arm.name, deterministic=deterministic))
    if arm.keras_backend and "keras" in sys.modules:
        current = sys.modules["keras"].backend.backend()
        if current != arm.keras_backend:
            raise RuntimeError(
                f"Keras is already imported on backend '{current}' in this process; "
                f"arm '{arm.name}' needs '{arm.keras_backend}' (run it in its own process)"
            )
    return arm
