"""The local executor: failure isolation, GPU slots, and the real tiny matrix end to end."""

from __future__ import annotations

import re
import signal
import sys
import textwrap

import pytest
import yaml
from rich.console import Console

from fwbench.core.paths import Workspace
from fwbench.study.executors.local import LocalExecutor
from fwbench.study.matrix import plan
from matrixfixtures import (
    RUN_IDS,
    STAGE,
    TINY_MATRIX,
    assert_complete,
    fingerprint,
    fwbench,
    make_workspace,
    run_dir,
    start_fwbench,
    wait_until,
)

# Stands in for `fwbench train` where only the executor's own behaviour is under test.
FAKE_TRAIN = textwrap.dedent(
    """
    import os, signal, sys
    from fwbench.record.runs import RunDir
    rd = RunDir(sys.argv[1])
    rd.set_status("running")
    (rd.path / "gpu.txt").write_text(os.environ.get("CUDA_VISIBLE_DEVICES", "none"))
    print("training", rd.run_id)
    if "-s43-pytorch-" in rd.run_id:
        print("ValueError: loader exploded", flush=True)
        sys.exit(3)
    if "-s43-keras-" in rd.run_id:
        print("about to be killed", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    # a whole finished run (fwbench.record.check): one epochs line per epoch and test metrics
    import json
    with open(rd.epochs_path, "a") as f:
        for epoch in range(1, rd.read_spec().epochs + 1):
            f.write(json.dumps({"epoch": epoch, "val_accuracy": 0.5}) + "\\n")
    rd.test_path.write_text(json.dumps({"accuracy": 0.5}))
    rd.set_status("done")
    """
)


def _fake(run_dir):
    return [sys.executable, "-c", FAKE_TRAIN, str(run_dir)]


def _tiny_plan(tmp_path):
    ws = Workspace(tmp_path)
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(TINY_MATRIX))
    runs = plan(ws, STAGE, matrix=tmp_path / "tiny.yaml")
    for r in runs:
        r.run_dir.write_spec(r.spec)
    return runs


@pytest.mark.slow
def test_failed_runs_are_recorded_with_their_log_and_the_rest_go_on(tmp_path):
    runs = _tiny_plan(tmp_path)
    ex = LocalExecutor(2, command_for=_fake, gpus=["0", "1"], console=Console(quiet=True))
    outcomes = ex.run(runs)
    assert [(o.run_id.rsplit("-", 1)[0], o.state) for o in outcomes] == [
        (RUN_IDS[0], "done"),
        (RUN_IDS[1], "done"),
        (RUN_IDS[2], "failed"),
        (RUN_IDS[3], "failed"),
    ]
    assert outcomes[2].error == "train exited with code 3: ValueError: loader exploded"
    assert outcomes[3].error == "killed by SIGKILL: about to be killed"
    status = runs[3].run_dir.read_status()
    assert status["state"] == "failed" and "training " + RUN_IDS[3] in status["log_tail"]
    assert runs[0].run_dir.log_path.read_text().startswith("=== fwbench run (local")
    # the first two runs start together, one per slot, each on its own GPU
    assert [(r.run_dir.path / "gpu.txt").read_text() for r in runs[:2]] == ["0", "1"]


def test_without_gpus_no_device_is_assigned(tmp_path, monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    runs = _tiny_plan(tmp_path)[:1]
    LocalExecutor(1, command_for=_fake, gpus=[], console=Console(quiet=True)).run(runs)
    assert (runs[0].run_dir.path / "gpu.txt").read_text() == "none"


@pytest.mark.slow
def test_tiny_matrix_resumes_after_ctrl_c_and_retries_only_failed_runs(tmp_path):
    """Real `fwbench train` on digits: interrupt, restart, a run made to fail, --retry-failed."""
    ws, matrix = make_workspace(tmp_path)
    args = ("run", "--matrix", str(matrix))
    # make s43-pytorch fail at train time: its checkpoint folder cannot be created
    (broken,) = [
        r.run_dir
        for r in plan(Workspace(ws), STAGE, matrix=matrix)
        if r.run_id.startswith(RUN_IDS[2])
    ]  # the directory its settings give it
    broken.path.mkdir(parents=True)
    (broken.path / "checkpoints").write_text("not a folder")

    runner = start_fwbench(ws, *args)
    wait_until(lambda: run_dir(ws, RUN_IDS[0]).state == "done", 300, "the first run")
    wait_until(lambda: run_dir(ws, RUN_IDS[1]).state == "running", 120, "the second run")
    runner.send_signal(signal.SIGINT)  # Ctrl-C while the second run trains
    out, _ = runner.communicate(timeout=120)
    assert runner.returncode == 130, out
    assert "interrupted: 1 run(s) stopped" in out
    first = fingerprint(run_dir(ws, RUN_IDS[0]))
    status = fwbench(ws, "status", "--matrix", str(matrix), "--stage", STAGE)
    assert re.search(rf"^{STAGE}\s+4\s+1\s+0\s+1\s+0\s+0\s+0\s+2$", status.stdout, re.M), (
        status.stdout
    )

    res = fwbench(ws, *args)  # restart: resumes the interrupted run, skips the finished one
    assert res.returncode == 1, res.stdout + res.stderr
    assert f"{STAGE}: 4 runs (3 done, 0 running, 0 interrupted, 1 failed" in res.stdout
    assert fingerprint(run_dir(ws, RUN_IDS[0])) == first
    assert run_dir(ws, RUN_IDS[0]).log_path.read_text().count("=== fwbench run") == 1
    assert run_dir(ws, RUN_IDS[1]).log_path.read_text().count("=== fwbench run") == 2

    status = fwbench(ws, "status", "--matrix", str(matrix), "--stage", STAGE)
    line = re.search(rf"^failed {RUN_IDS[2]}-\w+: (.+)$", status.stdout, re.M)
    assert line and "checkpoints" in line.group(1), status.stdout
    assert line.group(1) == broken.read_status()["error"].splitlines()[-1].strip()

    (broken.path / "checkpoints").unlink()  # fix the cause
    done = {r: fingerprint(run_dir(ws, r)) for r in (RUN_IDS[0], RUN_IDS[1], RUN_IDS[3])}
    res = fwbench(ws, *args)  # without --retry-failed: reported, not rerun
    assert res.returncode == 1 and f"skipped failed {RUN_IDS[2]}" in res.stdout
    assert broken.state == "failed"
    res = fwbench(ws, *args, "--retry-failed")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "launching 1 run(s)" in res.stdout
    for r in RUN_IDS:
        assert_complete(run_dir(ws, r))
    assert {r: fingerprint(run_dir(ws, r)) for r in done} == done


# Writes two whole epoch records and a test accuracy, like `fwbench train` does.
EPOCH_TRAIN = textwrap.dedent(
    """
    import json, sys, time
    from fwbench.record.runs import RunDir
    rd = RunDir(sys.argv[1])
    rd.set_status("running")
    fields = dict(train_loss=1.5, train_accuracy=0.5, val_loss=1.25, val_accuracy=0.625,
                  val_macro_f1=0.6, epoch_time_seconds=2.0, learning_rate=0.01,
                  images_per_second=321.0, data_time_seconds=0.1)
    with open(rd.epochs_path, "a") as f:
        for epoch in range(1, rd.read_spec().epochs + 1):
            f.write(json.dumps({"epoch": epoch, **fields}) + "\\n")
            f.flush()
            time.sleep(0.3)
    rd.test_path.write_text(json.dumps({"accuracy": 0.9312}))
    rd.set_status("done")
    """
)


def test_the_runner_prints_each_runs_epoch_lines_and_test_accuracy_without_a_tty(tmp_path):
    import io

    runs = _tiny_plan(tmp_path)[:2]  # seed 42, both frameworks
    text = io.StringIO()
    console = Console(file=text, width=300, force_terminal=False)
    command = lambda rd: [sys.executable, "-c", EPOCH_TRAIN, str(rd)]  # noqa: E731
    assert [o.state for o in LocalExecutor(2, command_for=command, console=console).run(runs)] == [
        "done",
        "done",
    ]
    lines = text.getvalue().splitlines()
    for fw in ("pytorch", "keras"):
        epoch = [ln for ln in lines if ln.startswith(f"[{fw}] {fw} epoch 1/1")]
        assert len(epoch) == 1 and "val loss 1.2500 acc 0.6250  321 img/s" in epoch[0]
        done = [ln for ln in lines if ln.startswith("done digits-mobilenetv2-fp32-s42-" + fw)]
        assert len(done) == 1 and "  test acc 0.9312 (" in done[0]
