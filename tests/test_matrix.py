"""Stage expansion, --only filters, run state from run directories, and `fwbench run --dry-run`."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys

import pytest

from fwbench.config.experiment_matrix import load_matrix
from fwbench.config.train import load_train_config
from fwbench.core.errors import FwbenchError
from fwbench.record.runs import RunDir
from fwbench.study.executors.interface import mark_interrupted, mark_launched, record_failure
from fwbench.study.matrix import SmokeOptions, expand_stage, parse_filters, run_state, select


def _dry_run(run_cli, tmp_path, *args):
    res = run_cli("run", "--dry-run", "--workspace", tmp_path, *args)
    assert res.code == 0, res.err
    listed = re.findall(r"^pending\s+(\S+)$", res.out, flags=re.M)
    return res.out, listed


@pytest.mark.parametrize(("stage", "runs"), [("stage1", 24), ("stage2", 180), ("demo", 6)])
def test_dry_run_lists_every_run_of_a_stage(run_cli, tmp_path, stage, runs):
    out, listed = _dry_run(run_cli, tmp_path, "--stage", stage)
    assert len(listed) == len(set(listed)) == runs
    assert f"{stage}: {runs} runs (0 done" in out
    assert f"would launch {runs} run(s)" in out
    assert not (tmp_path / "runs").exists()  # a dry run writes nothing


def test_only_filters_and_values_or_within_a_key(run_cli, tmp_path):
    _, listed = _dry_run(
        run_cli, tmp_path, "--stage", "stage2",
        "--only", "dataset=cifar10,model=resnet50|convnext_tiny", "--only", "precision=amp",
    )  # fmt: skip
    assert len(listed) == 2 * 5 * 2  # 2 models x 5 seeds x 2 frameworks
    assert all(r.startswith("cifar10-") and "-amp-" in r for r in listed)
    assert {r.split("-")[1] for r in listed} == {"resnet50", "convnext_tiny"}


def test_unknown_filter_key_and_value_are_user_errors(run_cli, tmp_path):
    res = run_cli(
        "run", "--stage", "stage1", "--dry-run", "--only", "datset=cifar10", "-w", tmp_path
    )
    assert res.code == 2 and "unknown filter key 'datset'" in res.err
    res = run_cli(
        "run", "--stage", "stage1", "--dry-run", "--only", "model=resnet05", "-w", tmp_path
    )
    assert res.code == 2 and "no model 'resnet05'" in res.err
    with pytest.raises(FwbenchError, match="bad filter"):
        parse_filters(["model"])


STAGE_YAML = """
stages:
  smoke:
    datasets: [digits]
    models: [mobilenetv2, resnet50]
    precisions: [fp32]
    seeds: [42, 43, 44]
    frameworks: [pytorch, keras]
    epochs_override: 3
    subset: 300
    overrides:
      training: {batch_size: 32}
"""


def test_expansion_applies_stage_overrides_and_smoke_options(tmp_path):
    path = tmp_path / "matrix.yaml"
    path.write_text(STAGE_YAML)
    stage = load_matrix(path).stage("smoke")
    base = load_train_config()
    specs = expand_stage("smoke", stage, base, SmokeOptions(epochs_override=1, num_workers=0))
    assert len(specs) == 12
    assert {s.epochs for s in specs} == {1}  # the command line beats the stage's 3
    assert {s.subset for s in specs} == {300} and {s.stage for s in specs} == {"smoke"}
    assert {s.train_config.training.batch_size for s in specs} == {32}  # the stage's override
    assert {s.train_config.training.num_workers for s in specs} == {base.training.num_workers}
    assert [s.num_workers for s in specs] == [0] * 12
    keras = select(specs, {"framework": {"keras"}, "seed": {"42", "44"}})
    assert [s.readable_id for s in keras] == [
        "digits-mobilenetv2-fp32-s42-keras",
        "digits-mobilenetv2-fp32-s44-keras",
        "digits-resnet50-fp32-s42-keras",
        "digits-resnet50-fp32-s44-keras",
    ]


def test_running_is_trusted_only_while_its_process_lives(tmp_path):
    rd = RunDir(tmp_path / "r")
    assert run_state(rd) == "pending"
    rd.set_status("running")  # this (live) process
    assert run_state(rd) == "running"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    status = rd.read_status() | {"pid": int(dead.stdout), "host": socket.gethostname()}
    rd.status_path.write_text(__import__("json").dumps(status))
    assert run_state(rd) == "interrupted"
    rd.status_path.write_text(__import__("json").dumps(status | {"host": "node-17"}))
    assert run_state(rd) == "running"  # another host: taken at its word


def test_failure_keeps_the_runs_own_error_and_adds_the_log_tail(tmp_path):
    rd = RunDir(tmp_path / "r")
    rd.path.mkdir()
    rd.log_path.write_text("epoch 1\nTraceback ...\nValueError: bad batch\n")
    rd.set_status("running")
    record_failure(rd, "train exited with code 1")
    assert rd.state == "failed"
    assert rd.read_status()["error"] == "train exited with code 1: ValueError: bad batch"
    assert rd.read_status()["log_tail"].endswith("ValueError: bad batch")
    rd.set_status("failed", error="RuntimeError: own words")
    record_failure(rd, "train exited with code 1")
    assert rd.read_status()["error"] == "RuntimeError: own words"
    mark_launched(rd)  # a retry forgets the old error
    assert rd.read_status().get("error") is None and rd.state == "pending"
    rd.set_status("failed", error="interrupted")
    mark_interrupted(rd)  # the runner stopped it: resumable, not failed
    assert run_state(rd) == "interrupted"
    assert os.getpid() != rd.read_status().get("pid")


def test_a_run_directory_with_other_settings_is_refused_before_anything_starts(run_cli, tmp_path):
    # run ids carry the settings, so only a hand-made (or hand-edited) directory can hold a spec
    # other than its name says; it is shown and refused, never clobbered
    stage = load_matrix().stage("demo")
    spec = expand_stage("demo", stage, load_train_config())[0]
    other = expand_stage("demo", stage, load_train_config(), SmokeOptions(epochs_override=1))[0]
    RunDir(tmp_path / "runs" / spec.run_id).write_spec(other)
    out, _ = _dry_run(run_cli, tmp_path, "--stage", "demo")
    assert f"{spec.run_id}  (run directory holds other settings)" in out
    res = run_cli("run", "--stage", "demo", "--workspace", tmp_path)
    assert res.code == 2 and "1 run directories hold runs with other settings" in res.err
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == [spec.run_id]
