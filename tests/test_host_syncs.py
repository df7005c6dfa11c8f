"""No arm makes the host wait for the device once per step (the GPU's 5 % budget, issue 18).

Each arm trains two epochs of six steps in its own process (``syncprobe.py``) with every
device-to-host read counted: inside ``train_step`` there must be none, and the loop reads the
step results once per epoch (fewer than ``READ_EVERY_STEPS`` steps), each read one copy.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fwbench.config.train import TrainConfig, load_train_config
from fwbench.core.paths import Workspace
from fwbench.record.runs import RunDir, make_spec
from fwbench.registry.arms import arm_env

PROBE = Path(__file__).with_name("syncprobe.py")


def probe(ws: Workspace, tmp_path: Path, arm: str) -> dict:
    data = load_train_config().model_dump()
    data["training"] |= {"batch_size": 16, "eval_batch_size": 64, "num_workers": 0}
    spec = make_spec(
        TrainConfig.model_validate(data), dataset="synthetic", model="mobilenetv2",
        precision="fp32", seed=5, framework=arm, epochs_override=2, subset=96,
    )  # fmt: skip
    rd = RunDir(tmp_path / arm)
    rd.write_spec(spec)
    env = os.environ | arm_env(arm, "1") | {"PYTHONPATH": os.pathsep.join(sys.path)}
    cmd = [sys.executable, str(PROBE), arm, str(ws.root), str(rd.path)]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads(p.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "arm",
    [
        "pytorch",
        pytest.param("keras", marks=pytest.mark.slow),
        pytest.param("keras-jax", marks=pytest.mark.slow),
        pytest.param("keras-torch", marks=pytest.mark.slow),
    ],
)
@pytest.mark.slow
def test_no_arm_reads_the_device_inside_its_step_and_the_loop_reads_once_per_epoch(
    synthetic_ws, tmp_path, arm
):
    counts = probe(synthetic_ws, tmp_path, arm)
    assert counts["state"] == "done" and counts["epochs"] == 2
    assert counts["steps"] == 12  # 96 images / 16 per step, two epochs
    assert counts["train_step"] == 0, counts
    assert counts["reads"] == 2, counts  # one per epoch, not one per step
    assert counts["read_steps"] <= counts["reads"], counts  # each read is one copy
