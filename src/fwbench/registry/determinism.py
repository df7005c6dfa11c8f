"""One determinism rule for every arm: ``training.deterministic``, by each framework's mechanism.

Framework-free: this module says *what* each arm does; the arm's own code does it where it sets
its threads (``frameworks/pytorch/determinism_switches.py`` for PyTorch and Keras on torch,
``keras/tensorflow/step.py``, ``keras/jax/step.py``).

=========== ======== ===================================================================
arm         runtime  ``deterministic: true``
=========== ======== ===================================================================
pytorch     torch    ``torch.use_deterministic_algorithms(True, warn_only=True)``, cuDNN
                     ``deterministic`` on and ``benchmark`` off, ``CUBLAS_WORKSPACE_CONFIG=
                     :4096:8`` in the environment before CUDA starts
keras       tf       ``tf.config.experimental.enable_op_determinism()`` (covers XLA too)
keras-jax   jax      ``XLA_FLAGS=--xla_gpu_deterministic_ops=true`` before JAX starts its
                     backend (XLA:CPU is deterministic either way)
keras-torch torch    the pytorch mechanism
=========== ======== ===================================================================

``deterministic: false`` turns each off (cuDNN ``benchmark`` on: autotuned kernels). The variables
are set by :func:`environment` through ``arms.arm_env``/``arms.activate`` — before any framework
is imported in the process — and every arm reports back what is in effect (``deterministic`` and
the ``determinism`` string below) into ``env.json``, ``runs.csv`` and ``bench.csv``.
"""

from __future__ import annotations

from collections.abc import Mapping

CUBLAS_VAR, CUBLAS_VALUE = "CUBLAS_WORKSPACE_CONFIG", ":4096:8"
XLA_FLAG = "--xla_gpu_deterministic_ops=true"
_XLA_FLAG_NAME = "--xla_gpu_deterministic_ops"

RUNTIMES = {"pytorch": "torch", "keras": "tf", "keras-jax": "jax", "keras-torch": "torch"}
MECHANISMS = {
    "torch": "torch.use_deterministic_algorithms(warn_only) + cudnn.deterministic "
    f"+ {CUBLAS_VAR}={CUBLAS_VALUE}",
    "tf": "tf.config.experimental.enable_op_determinism()",
    "jax": f"XLA_FLAGS={XLA_FLAG}",
}
OFF = {
    "torch": "off (cudnn.benchmark autotuning)",
    "tf": "off (TensorFlow defaults)",
    "jax": "off (XLA defaults)",
}


def runtime(arm: str) -> str:
    """The runtime whose mechanism arm ``arm`` (a registry name) uses: torch, tf or jax."""
    return RUNTIMES[arm]


def mechanism(runtime_name: str, deterministic: bool) -> str:
    """The words recorded for a runtime's determinism in effect."""
    return (MECHANISMS if deterministic else OFF)[runtime_name]


def xla_flags(current: str, deterministic: bool) -> str:
    """``XLA_FLAGS`` with the deterministic-ops flag present exactly when ``deterministic``."""
    kept = [f for f in current.split() if not f.startswith(_XLA_FLAG_NAME)]
    return " ".join([*kept, XLA_FLAG] if deterministic else kept)


def xla_flag_on(flags: str) -> bool:
    """Whether ``flags`` (an ``XLA_FLAGS`` value) turns deterministic ops on."""
    return XLA_FLAG in flags.split()


def environment(arm: str, deterministic: bool, env: Mapping[str, str]) -> dict[str, str]:
    """Variables a process of ``arm`` must start with for the rule (``env``: the current ones)."""
    name = runtime(arm)
    if name == "torch" and deterministic:
        return {CUBLAS_VAR: env.get(CUBLAS_VAR) or CUBLAS_VALUE}
    if name == "jax":
        return {"XLA_FLAGS": xla_flags(env.get("XLA_FLAGS", ""), deterministic)}
    return {}
