"""``fwbench train`` end to end, one process per run as executors launch it (slow).

MobileNetV2 on the synthetic set (500 training images, batch 32), 3 epochs, CPU, one thread.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fwbench.core.paths import Workspace
from fwbench.record.runs import EPOCH_FIELDS, RunDir
from fwbench.registry.determinism import mechanism, runtime
from runfixtures import find_run

pytestmark = pytest.mark.slow
ARMS = ("pytorch", "keras")
TIMING = {"epoch_time_seconds", "images_per_second", "data_time_seconds"}
CONFIG = """\
training: {batch_size: 32, eval_batch_size: 128, num_workers: 0}
lr: {base_lr: 0.02, reference_batch: 32, warmup_epochs: 0.5}
"""


def fwbench(*args, ws: Workspace, check: bool = True, **popen) -> subprocess.CompletedProcess:
    """Run the real command line in its own process."""
    cmd = [sys.executable, "-m", "fwbench.cli", *map(str, args), "--workspace", str(ws.root)]
    env = os.environ | {"FWBENCH_THREADS": "1", "COLUMNS": "200"}
    if popen.pop("background", False):
        return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    if check:
        assert p.returncode == 0, p.stderr[-3000:]
    return p


def train_args(arm: str, run_dir: Path, *extra) -> list:
    config = run_dir.parent.parent / "cfg.yaml"  # <workspace>/runs/<run>
    return [
        "train", "--framework", arm, "--dataset", "synthetic", "--model", "mobilenetv2",
        "--config", config, "--epochs-override", "3", "--run-dir", run_dir, "--no-progress",
        *extra,
    ]  # fmt: skip


def metrics_only(records: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in TIMING} for r in records]


@pytest.fixture(scope="module")
def ws(synthetic_ws) -> Workspace:
    (synthetic_ws.root / "cfg.yaml").write_text(CONFIG)
    return synthetic_ws


@pytest.fixture(scope="module")
def reference(ws) -> dict[str, RunDir]:
    """One uninterrupted 3-epoch run per arm."""
    runs = {}
    for arm in ARMS:
        rd = RunDir(ws.runs_dir / f"reference-{arm}")
        fwbench(*train_args(arm, rd.path), ws=ws)
        runs[arm] = rd
    return runs


@pytest.mark.parametrize("arm", ARMS)
def test_run_writes_every_file_with_every_field(reference, arm):
    rd = reference[arm]
    spec = rd.read_spec()
    assert (spec.framework, spec.epochs, spec.train_config.training.batch_size) == (arm, 3, 32)
    status = rd.read_status()
    assert status["state"] == "done" and status["epochs_done"] == 3
    assert {"started_at", "finished_at", "host", "pid", "best_epoch", "test_accuracy"} <= set(
        status
    )
    epochs = rd.epochs()
    assert [tuple(e) for e in epochs] == [EPOCH_FIELDS] * 3
    for e in epochs:
        assert all(math.isfinite(e[k]) for k in EPOCH_FIELDS)
        assert e["images_per_second"] > 0 and 0 <= e["data_time_seconds"] < e["epoch_time_seconds"]
    assert epochs[-1]["learning_rate"] < epochs[0]["learning_rate"]  # cosine decays
    test = rd.test_metrics()
    assert {"accuracy", "macro_f1", "loss", "confusion_matrix", "best_epoch", "n"} <= set(test)
    assert test["n"] == 200 and sum(map(sum, test["confusion_matrix"])) == 200
    best = max(epochs, key=lambda e: e["val_accuracy"])
    assert test["best_epoch"] == best["epoch"] == status["best_epoch"]
    env = json.loads(rd.env_path.read_text())
    assert env["framework"] == arm and env["run"]["precision"] == "fp32"
    assert env["run"]["threads"] == 1 and env["run"]["steps_per_epoch"] == 15
    # Keras 3 imports jax whenever it is installed (the lock has it), whatever its backend
    own = {"pytorch": ["torch", "torchvision"], "keras": ["jax", "keras", "tensorflow"]}[arm]
    assert env["frameworks_imported"] == own  # a run imports its own framework only
    if arm == "pytorch":
        assert env["run"]["cudnn_deterministic"] and env["run"]["deterministic_algorithms"]
    else:
        assert env["run"]["op_determinism"] is True
    # the rule in effect, in the arm's own words (registry/determinism.py)
    assert env["run"]["deterministic"] is True and env["run"]["deterministic_setting"] is True
    assert env["run"]["determinism"] == mechanism(runtime(arm), True)
    assert status["peak_memory_bytes"] > 0 and status["peak_memory_source"] == "peak RSS (host)"
    names = sorted(p.name for p in rd.checkpoints.iterdir())
    assert (
        names
        == {
            "pytorch": ["best.pt", "last.pt", "previous-last.pt"],
            "keras": ["best.weights.h5", "last.npz", "previous-last.npz"],
        }[arm]
    )
    assert "done: test accuracy" in rd.log_path.read_text()


@pytest.mark.parametrize("arm", ARMS)
def test_loss_falls_and_accuracy_rises_well_above_chance(reference, arm):
    first, *_, last = reference[arm].epochs()
    assert last["train_loss"] < 0.5 * first["train_loss"]
    assert last["train_accuracy"] > 0.8  # chance is 0.1
    # Validation accuracy is not asserted: 45 steps leave BatchNorm's inference statistics
    # unsettled (Keras' MobileNetV2 averages them with momentum 0.999), so it can sit at chance.


@pytest.mark.parametrize("arm", ARMS)
def test_two_identical_cpu_runs_give_identical_metrics(ws, reference, arm):
    rd = RunDir(ws.runs_dir / f"repeat-{arm}")
    fwbench(*train_args(arm, rd.path), ws=ws)
    assert metrics_only(rd.epochs()) == metrics_only(reference[arm].epochs())
    assert (
        rd.test_metrics()["confusion_matrix"] == reference[arm].test_metrics()["confusion_matrix"]
    )


@pytest.mark.parametrize("arm", ARMS)
def test_resume_after_kill_in_epoch_two_gives_same_metrics(ws, reference, arm):
    rd = RunDir(ws.runs_dir / f"killed-{arm}")
    proc = fwbench(*train_args(arm, rd.path), ws=ws, background=True)
    try:
        deadline = time.monotonic() + 300
        while len(rd.epochs()) < 1 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)  # polling the file the run writes, not waiting a fixed time
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert len(rd.epochs()) == 1 and rd.state == "running"  # killed during epoch 2
    p = fwbench("train", "--run-dir", rd.path, "--no-progress", ws=ws)  # executors' form
    assert "done" in p.stderr
    assert json.loads(rd.env_path.read_text())["run"]["resumed_from_epoch"] == 1
    assert metrics_only(rd.epochs()) == metrics_only(reference[arm].epochs())
    assert rd.test_metrics()["accuracy"] == reference[arm].test_metrics()["accuracy"]


def test_a_done_run_is_not_retrained(ws, reference):
    rd = reference["pytorch"]
    before = rd.epochs_path.read_text()
    p = fwbench("train", "--run-dir", rd.path, ws=ws)
    assert "already done, not retrained" in p.stderr
    assert rd.epochs_path.read_text() == before


@pytest.mark.parametrize("arm", ARMS)
def test_amp_on_cpu_runs_in_bfloat16_and_records_it(ws, arm):
    rd = RunDir(ws.runs_dir / f"amp-{arm}")
    fwbench(*train_args(arm, rd.path, "--precision", "amp", "--subset", "100"), ws=ws)
    env = json.loads(rd.env_path.read_text())
    assert env["run"]["amp_dtype"] == "bfloat16" and env["run"]["loss_scaling"] is False
    assert rd.read_spec().precision == "amp" and rd.state == "done"
    assert all(math.isfinite(e["train_loss"]) for e in rd.epochs())


def test_digits_trains_offline_after_data_prepare(tmp_path):
    ws = Workspace(tmp_path)
    fwbench("data", "prepare", "digits", ws=ws)
    (tmp_path / "cfg.yaml").write_text(CONFIG)
    p = fwbench(
        "train", "--framework", "pytorch", "--dataset", "digits", "--model", "mobilenetv2",
        "--config", tmp_path / "cfg.yaml", "--epochs-override", "1", "--subset", "200",
        "--num-workers", "0", "--no-progress", ws=ws,
    )  # fmt: skip
    rd = find_run(ws.runs_dir, "digits-mobilenetv2-fp32-s42-pytorch")
    assert "done, test accuracy" in p.stderr and rd.state == "done"
    # --subset shrinks the training split only: the whole digits test set (360) is scored
    assert rd.read_spec().subset == 200 and rd.test_metrics()["n"] == 360
    assert len(rd.epochs()) == 1


def test_train_without_identity_or_spec_is_a_one_line_error(ws):
    p = fwbench("train", "--run-dir", ws.root / "nowhere", ws=ws, check=False)
    assert p.returncode == 2 and "no spec.json" in p.stderr and "Traceback" not in p.stderr
    p = fwbench("train", "--framework", "pytorch", ws=ws, check=False)
    assert p.returncode == 2 and "missing --dataset, --model" in p.stderr
