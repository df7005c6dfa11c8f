"""Runners and trainings that overlap, are interrupted, cannot write, or find damaged runs.

Real `fwbench run` / `fwbench train` processes on a tiny stage (digits, MobileNetV2, PyTorch,
1 epoch on 40 images, one thread), as a user would run them.
"""

from __future__ import annotations

import errno
import json
import re
import signal

import pytest
import yaml

from badinputs import assert_one_line, read_only
from fwbench.core.paths import Workspace
from fwbench.record.runs import RunDir
from fwbench.study.matrix import expand_stage, load_configs
from matrixfixtures import fwbench, start_fwbench, wait_until

pytestmark = pytest.mark.slow

STAGE = "tiny"
SEEDS = (42, 43)
MATRIX = {
    "stages": {
        STAGE: {
            "datasets": ["digits"],
            "models": ["mobilenetv2"],
            "precisions": ["fp32"],
            "seeds": list(SEEDS),
            "frameworks": ["pytorch"],
            "epochs_override": 1,
            "subset": 40,
            "overrides": {
                "training": {
                    "batch_size": 16,
                    "eval_batch_size": 64,
                    "num_workers": 0,
                    "threads": 1,
                }
            },
        }
    }
}


def _run_id(ws, seed: int) -> str:
    """The run id (readable part + settings hash) the workspace's stage gives ``seed``."""
    train, matrix = load_configs(Workspace(ws))
    specs = expand_stage(STAGE, matrix.stage(STAGE), train)
    return next(s.run_id for s in specs if s.seed == seed)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    ws = tmp_path_factory.mktemp("runner") / "ws"
    (ws / "configs").mkdir(parents=True)
    (ws / "configs" / "experiment_matrix.yaml").write_text(yaml.safe_dump(MATRIX))
    (ws / "configs" / "train_config.yaml").write_text(
        "training: {batch_size: 16, num_workers: 0, threads: 1}\n"
    )
    done = fwbench(ws, "data", "prepare", "digits")
    assert done.returncode == 0, done.stdout + done.stderr
    return ws


def _launches(rd: RunDir) -> int:
    return rd.log_path.read_text().count("=== fwbench run")


def test_two_runners_train_every_run_exactly_once(workspace):
    first = start_fwbench(workspace, "run", "--stage", STAGE)
    rd = RunDir(workspace / "runs" / _run_id(workspace, SEEDS[0]))
    wait_until(lambda: rd.state == "running", 120, "the first runner to start a run")
    second = fwbench(workspace, "run", "--stage", STAGE)
    out_first, _ = first.communicate(timeout=300)
    assert first.returncode == 0 and second.returncode == 0, out_first + second.stdout
    busy = f"busy {_run_id(workspace, SEEDS[0])}"
    assert busy in second.stdout, second.stdout  # says who holds it
    assert "trained by pid" in second.stdout
    for seed in SEEDS:
        run = RunDir(workspace / "runs" / _run_id(workspace, seed))
        assert run.state == "done"
        assert _launches(run) == 1  # trained by one process, once
        assert [r["epoch"] for r in run.epochs()] == [1]  # one line per epoch


def test_corrupt_runs_are_repaired_and_unwritable_runs_fail_alone(workspace):
    runs = workspace / "runs"
    damaged = {SEEDS[0]: "test.json", SEEDS[1]: "spec.json"}
    for seed, name in damaged.items():
        path = runs / _run_id(workspace, seed) / name
        path.write_bytes(path.read_bytes()[:40])
    status = fwbench(workspace, "status", "--stage", STAGE)
    for seed, name in damaged.items():
        corrupt = f"corrupt {_run_id(workspace, seed)}: {name} is truncated"
        assert corrupt in status.stdout, status.stdout
    # a third seed whose run directory cannot be written: it fails, the others are repaired
    matrix = yaml.safe_load((workspace / "configs" / "experiment_matrix.yaml").read_text())
    matrix["stages"][STAGE]["seeds"] = [*SEEDS, 44]
    (workspace / "configs" / "experiment_matrix.yaml").write_text(yaml.safe_dump(matrix))
    blocked = runs / _run_id(workspace, 44)
    blocked.mkdir()
    with read_only(blocked):
        result = fwbench(workspace, "run", "--stage", STAGE)
    text = result.stdout + result.stderr
    assert result.returncode == 1, text
    assert "Traceback" not in text
    assert f"failed {_run_id(workspace, 44)}: cannot write the run: Read-only file system" in text
    for seed, name in damaged.items():
        rd = RunDir(runs / _run_id(workspace, seed))
        assert f"repairing corrupt {_run_id(workspace, seed)}: {name} is truncated" in text
        assert rd.state == "done" and rd.test_metrics()["accuracy"] >= 0
        assert "resuming after epoch 1" in rd.log_path.read_text()  # from its checkpoint
        assert [r["epoch"] for r in rd.epochs()] == [1]
        kept = next((rd.path / "quarantine").iterdir())
        assert (kept / name).is_file()  # the damaged file is kept, not deleted
    collected = fwbench(workspace, "collect", "--stage", STAGE)
    assert collected.returncode == 0, collected.stderr
    assert "2 done, 1 pending" in collected.stdout or "2 done" in collected.stdout


def test_ctrl_c_leaves_train_interrupted_and_resume_counts_epochs_from_one(workspace):
    run_dir = workspace / "runs" / "interrupt-me"
    args = ("--framework", "pytorch", "--dataset", "digits", "--model", "mobilenetv2")
    proc = start_fwbench(
        workspace, "train", *args, "--subset", "40", "--epochs-override", "3",
        "--run-dir", str(run_dir), "--no-progress", "--seed", "7",
    )  # fmt: skip
    rd = RunDir(run_dir)
    wait_until(lambda: len(rd.epochs()) >= 1, 180, "the first epoch")
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    done = len(rd.epochs())
    assert proc.returncode == 130, out
    assert "Traceback" not in out
    last = [ln for ln in out.splitlines() if ln.strip()][-1]
    assert re.match(
        r"interrupted: run digits-mobilenetv2-fp32-s7-pytorch-[0-9a-f]{8} left interrupted", last
    ), last
    assert f"after {done} of 3 epochs" in last
    assert rd.state == "interrupted"
    resumed = fwbench(workspace, "train", "--run-dir", str(run_dir), "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming after epoch {done}" in rd.log_path.read_text()
    assert [r["epoch"] for r in rd.epochs()] == [1, 2, 3] and rd.state == "done"


def test_checkpoint_write_on_full_disk_fails_the_run_with_that_reason(
    run_cli, workspace, monkeypatch
):
    from fwbench.frameworks.pytorch.backend import TorchBackend

    def full(self, path, meta):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(TorchBackend, "save_last", full)
    monkeypatch.setenv("FWBENCH_WORKSPACE", str(workspace))
    run_dir = workspace / "runs" / "full-disk"
    args = ("--framework", "pytorch", "--dataset", "digits", "--model", "mobilenetv2")
    result = run_cli(
        "train", *args, "--subset", "40", "--epochs-override", "1", "--run-dir", run_dir,
        "--no-progress",
    )  # fmt: skip
    assert_one_line(result, 2, "disk full: No space left on device", "last.pt")
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "failed" and "No space left on device" in status["error"]
