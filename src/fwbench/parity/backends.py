"""Parity checks on every Keras arm, each in its own process (``KERAS_BACKEND`` is per process).

``run_in_arm(arm, task, args)`` launches ``python -m fwbench.parity.backends`` with the arm's
environment; the child activates the arm, runs the task and prints one JSON line. Tasks:

- ``params``: trainable and total parameter counts of Keras models (``fwbench models compare``);
- ``logits``: PyTorch weights transferred into the matched mirror, logits compared
  (``fwbench parity models``; torch is imported first, TensorFlow only on the keras arm);
- ``sgd``: two steps of the arm's ``TorchSGD`` from given weights, gradients and LR;
- ``lrs``: the LR its ``TorchSGD`` holds at each step of a schedule (``fwbench parity lr``);
- ``train``: the lockstep run of ``fwbench parity train`` against this arm (torch first).

Every answer also lists the frameworks the child imported, so a caller can check that a
keras-jax or keras-torch process never loaded TensorFlow.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np

from fwbench.registry.arms import activate, arm_env

MARK = "FWBENCH_ARM_RESULT "
FRAMEWORK_MODULES = ("torch", "torchvision", "tensorflow", "jax", "keras")


def run_in_arm(arm: str, task: str, args: dict[str, Any], timeout: float = 1200) -> dict:
    """Run ``task`` with ``args`` in a fresh process of ``arm``; return its JSON answer."""
    env = os.environ | arm_env(arm)
    payload = json.dumps({"arm": arm, "task": task, "args": args})
    cmd = [sys.executable, "-m", "fwbench.parity.backends", payload]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    for line in reversed(p.stdout.splitlines()):
        if line.startswith(MARK) and p.returncode == 0:
            return json.loads(line.removeprefix(MARK))
    tail = "\n".join((p.stderr or p.stdout).strip().splitlines()[-15:])
    raise RuntimeError(f"{arm} {task} exited with {p.returncode}:\n{tail}")


def params_task(models: list[list]) -> list[dict]:
    """Trainable and total parameters of each ``[model, input_size, num_classes, variant]``."""
    import keras

    from fwbench.frameworks.keras.models import build_model

    rows = []
    for model, size, classes, variant in models:
        keras.backend.clear_session()
        net = build_model(model, classes, size, variant=variant)
        rows.append(
            {
                "model": model,
                "input_size": size,
                "num_classes": classes,
                "variant": variant,
                "trainable": sum(int(np.prod(w.shape)) for w in net.trainable_weights),
                "total": sum(int(np.prod(w.shape)) for w in net.weights),
            }
        )
    return rows


def logits_task(models: list[str], sizes: list[int], **kwargs) -> list[dict]:
    """Output parity of the matched mirrors on this arm's backend (one row per model x size).

    ``kwargs``: ``num_classes``, ``batch``, ``seed`` of ``parity.outputs.check_outputs``.
    """
    from fwbench.parity.outputs import check_outputs

    return [check_outputs(m, s, **kwargs).as_row() for m in models for s in sizes]


def sgd_task(weights: list, grads: list, lr: float, momentum: float, nesterov: bool, wd: float):
    """Two steps of ``TorchSGD`` (the momentum path runs too) from ``weights``; new weights."""
    import keras

    from fwbench.frameworks.keras.optimizer import TorchSGD

    variables = [keras.Variable(np.asarray(w, np.float32)) for w in weights]
    sgd = TorchSGD(momentum, nesterov, wd)
    sgd.build(variables)
    if keras.backend.backend() == "torch":  # the fused update the keras-torch step installs
        from fwbench.frameworks.keras.torch.step import foreach_apply

        sgd.fused_apply = foreach_apply
    for _ in range(2):
        sgd.set_lr(lr)
        sgd.apply(
            [keras.ops.convert_to_tensor(np.asarray(g, np.float32)) for g in grads], variables
        )
    return [keras.ops.convert_to_numpy(v).tolist() for v in variables]


def lrs_task(train_config: dict, dataset: str, subset, epochs_override) -> dict:
    """This arm's own schedule, and the LR its ``TorchSGD`` held and applied at each step.

    The parameter is reset to 0 before each step with gradient 1, so the update is ``−lr·d``
    (``parity.lr.applied_lrs`` divides ``d`` out).
    """
    import keras

    from fwbench.config.train import TrainConfig
    from fwbench.frameworks.keras.backend import arm_name
    from fwbench.frameworks.keras.optimizer import TorchSGD
    from fwbench.parity.lr_readback import applied_lrs, arm_schedule

    cfg = TrainConfig.model_validate(train_config)
    schedule = arm_schedule(cfg, arm_name(), dataset, subset, epochs_override)
    o = cfg.optimizer
    sgd = TorchSGD(o.momentum, o.nesterov, o.weight_decay)
    v = keras.Variable(np.zeros(1, np.float32))
    sgd.build([v])
    one = keras.ops.ones(1)
    lrs, updates = [], []
    for lr in schedule:
        sgd.set_lr(lr)
        v.assign(np.zeros(1, np.float32))
        lrs.append(float(keras.ops.convert_to_numpy(sgd.learning_rate)))
        sgd.apply([one], [v])
        updates.append(float(keras.ops.convert_to_numpy(v)[0]))
    dtype = str(keras.ops.convert_to_numpy(sgd.lr64).dtype)
    applied = applied_lrs(cfg, updates).tolist()
    return {"lrs": lrs, "dtype": dtype, "schedule": schedule, "applied": applied}


def train_task(workspace: str, train_config: dict, **kwargs) -> dict:
    """``parity.lockstep.run_lockstep`` on this arm; the :class:`Lockstep` as JSON."""
    from fwbench.config.train import TrainConfig
    from fwbench.core.paths import Workspace
    from fwbench.parity.lockstep import run_lockstep

    cfg = TrainConfig.model_validate(train_config)
    return run_lockstep(Workspace(Path(workspace)), cfg, **kwargs).to_json()


TASKS = {
    "params": params_task, "logits": logits_task, "sgd": sgd_task, "lrs": lrs_task,
    "train": train_task,
}  # fmt: skip
TORCH_FIRST = ("logits", "train")  # tasks that load torch beside Keras


def main(payload: str) -> None:
    """Child side: activate the arm, run the task, print the answer."""
    job = json.loads(payload)
    activate(job["arm"])
    if job["task"] in TORCH_FIRST:  # torch before anything that may load TensorFlow
        from fwbench.frameworks.both import import_both

        import_both(job["arm"])
    import keras

    from fwbench.frameworks.keras.backend import keep_tensorflow_out

    keep_tensorflow_out()
    result = TASKS[job["task"]](**job["args"])
    answer = {
        "arm": job["arm"],
        "keras_backend": keras.backend.backend(),
        "result": result,
        "imported": [m for m in FRAMEWORK_MODULES if m in sys.modules],
    }
    print(MARK + json.dumps(answer), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
