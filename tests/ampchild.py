"""Child process of ``test_amp.py``: train one arm a few steps in float16 on this CPU.

Keras reads ``KERAS_BACKEND`` once per process, so each arm trains in a process of its own.
Argument: a JSON object with ``arm``, ``workspace`` and ``runs``: run directory -> head bias
(added to the first class's logit: above float16's 65504 it overflows unless the head computes
in float32). Each run is MobileNetV2, 2 steps of 16 images, evaluated on 40 images.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from fwbench.config.train import TrainConfig, load_train_config
from fwbench.core.paths import Workspace
from fwbench.frameworks.base import load_backend
from fwbench.record.runs import RunDir, make_spec
from fwbench.training.loop import train_run


def builder(arm: str, head_bias: float):
    """The registry's model for ``arm`` with ``head_bias`` added to class 0's head bias."""

    def build(model: str, num_classes: int, size: int, variant: str):
        if arm == "pytorch":
            import torch

            from fwbench.frameworks.pytorch.models import build_model

            net = build_model(model, num_classes, size, variant)
            head = [m for m in net.modules() if isinstance(m, torch.nn.Linear)][-1]
            with torch.no_grad():
                head.bias[0] += head_bias
            return net
        import keras

        from fwbench.frameworks.keras.models import build_model

        net = build_model(model, num_classes, size, variant)
        head = [layer for layer in net.layers if isinstance(layer, keras.layers.Dense)][-1]
        bias = keras.ops.convert_to_numpy(head.bias).copy()
        bias[0] += head_bias
        head.bias.assign(bias)
        return net

    return build


def main(args: dict) -> None:
    data = load_train_config().model_dump()
    data["training"] |= {
        "batch_size": 16, "eval_batch_size": 64, "num_workers": 0, "amp_dtype": "float16",
        "stop_on_divergence": False,  # the numerics are under test, not the divergence rule
    }  # fmt: skip
    data["lr"] |= {"base_lr": 0.01, "warmup_epochs": 0.0}
    cfg = TrainConfig.model_validate(data)
    spec = make_spec(
        cfg, dataset="synthetic", model="mobilenetv2", precision="amp", seed=3,
        framework=args["arm"], epochs_override=1, subset=32, eval_subset=40,
    )  # fmt: skip
    for run_dir, head_bias in args["runs"].items():
        rd = RunDir(run_dir)
        rd.write_spec(spec)
        backend = load_backend(args["arm"], builder(args["arm"], float(head_bias)))
        train_run(rd, Workspace(Path(args["workspace"])), backend=backend, show_progress=False)


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
