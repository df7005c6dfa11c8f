"""The Slurm executor against a real Slurm (`bash scripts/slurm-local.sh up`; CI starts one).

Skipped with the reason when no Slurm answers, except under CI=true, where that is a failure.
"""

from __future__ import annotations

import os
import re
import subprocess

import pytest
import yaml

from fwbench.config.executor import SlurmExecutorConfig
from fwbench.core.fileio import write_json
from fwbench.record.runs import RunDir
from fwbench.study.executors.slurm import SlurmExecutor, _final_state, slurm_parameters
from fwbench.study.matrix import PlannedRun
from matrixfixtures import (
    RUN_IDS,
    STAGE,
    assert_complete,
    fingerprint,
    fwbench,
    make_workspace,
    run_dir,
    start_fwbench,
    wait_until,
)
from specs import digits_spec

# Resources a 2-core, GPU-less test node can give two tasks at once.
SLURM_ARGS = ("--executor", "slurm", "--cpus", "1", "--mem-gb", "3", "--gpus", "0")


@pytest.fixture(scope="module")
def slurm() -> None:
    """A reachable Slurm, or a skip (a failure under CI=true) naming why not."""
    try:
        probe = subprocess.run(["sinfo", "-h"], capture_output=True, text=True, timeout=20)
        last = (probe.stderr.strip().splitlines() or [""])[-1]
        reason = None if probe.returncode == 0 else f"sinfo failed: {last}"
    except FileNotFoundError:
        reason = "sinfo not found"
    except subprocess.TimeoutExpired:
        reason = "sinfo gave no answer in 20 s"
    if reason:
        reason = f"no Slurm reachable ({reason}); start one: bash scripts/slurm-local.sh up"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true requires Slurm: {reason}")
        pytest.skip(reason)


def test_config_and_cli_options_become_sbatch_parameters():
    cfg = SlurmExecutorConfig(partition="gpu", account="lab", gpus=2, sbatch={"qos": "high"})
    params = slurm_parameters(cfg)
    assert params["slurm_partition"] == "gpu" and params["slurm_account"] == "lab"
    assert params["gpus_per_node"] == 2 and params["timeout_min"] == 720
    assert params["slurm_additional_parameters"] == {"qos": "high"}
    assert "gpus_per_node" not in slurm_parameters(SlurmExecutorConfig(gpus=0))


class _Job:
    """A submitit job whose accounting lags: each forced query returns the next state."""

    def __init__(self, *states: str):
        self.states, self.asked = list(states), 0

    @property
    def state(self) -> str:
        return self.states[0]

    def get_info(self, mode: str) -> dict:
        self.asked += 1
        return {"State": self.states[min(self.asked, len(self.states) - 1)]}


def test_a_task_done_before_accounting_ends_reports_the_end_state_not_pending():
    # a cancelled task's result file came before sacct's end: it read PENDING, then UNKNOWN
    job = _Job("PENDING", "UNKNOWN", "CANCELLED by 0")
    assert _final_state(job, pause=0) == "CANCELLED by 0" and job.asked == 2
    assert _final_state(_Job("FAILED"), pause=0) == "FAILED"
    assert _final_state(_Job("RUNNING"), tries=3, pause=0) == "RUNNING"  # reported, not hung


@pytest.mark.parametrize(
    "written,expected", [("interrupted", "interrupted"), ("running", "failed")]
)
def test_an_ended_task_leaves_its_run_resumable_only_if_the_run_stopped_itself(
    tmp_path, written, expected
):
    # scancel: the run caught SIGTERM and wrote `interrupted` at a checkpoint -> resumable.
    # OOM kill / node failure: `running` left behind by a dead process -> failed.
    dead = subprocess.Popen(["true"])
    dead.wait()
    spec = digits_spec()
    rd = RunDir(tmp_path / spec.run_id)
    rd.path.mkdir()
    rd.write_spec(spec)
    write_json(rd.status_path, {"state": written, "pid": dead.pid, "host": os.uname().nodename})
    job = _Job("CANCELLED by 0" if written == "interrupted" else "OUT_OF_MEMORY")
    job.job_id = "7_0"
    out = SlurmExecutor._finish(None, job, PlannedRun(spec, rd))
    status = rd.read_status()
    assert out.state == status["state"] == expected
    ended = f"slurm job 7_0 ended {job.state}"
    if expected == "interrupted":
        assert status["stopped_by"] == ended and "resumes it" in out.error
    else:
        assert status["error"].startswith(ended) and "stopped_by" not in status


@pytest.mark.slurm
@pytest.mark.slow
def test_tiny_matrix_on_slurm_survives_a_killed_task(tmp_path, slurm):
    ws, matrix = make_workspace(tmp_path)
    executor_yaml = {"slurm": {"poll_seconds": 1, "array_parallelism": 2, "time_min": 30}}
    (ws / "configs" / "executor.yaml").write_text(yaml.safe_dump(executor_yaml))
    args = ("run", "--matrix", str(matrix), *SLURM_ARGS)

    runner = start_fwbench(ws, *args)
    running = lambda: run_dir(ws, RUN_IDS[0]).state == "running"  # noqa: E731
    wait_until(running, 300, "the first array task to start training")
    victim = run_dir(ws, RUN_IDS[0])
    job_id = victim.read_status()["slurm_job_id"]
    assert re.fullmatch(r"\d+_0", job_id)
    subprocess.run(["scancel", job_id], check=True)  # kill the task mid-run
    out, _ = runner.communicate(timeout=900)
    assert runner.returncode == 1, out
    array_id = job_id.split("_")[0]
    assert f"submitted 4 run(s) as Slurm job array {array_id}" in out
    # scancel sends SIGTERM first: the run stops at a step boundary, checkpointed, and stays
    # resumable (`interrupted`), with Slurm's end state as the reason; the command exits 1
    assert re.search(
        rf"interrupted {RUN_IDS[0]}-\w+ \(slurm job {job_id}\): slurm job {job_id} ended CANC", out
    ), out
    assert f"{STAGE}: 4 runs (3 done, 0 running, 1 interrupted, 0 failed" in out
    logs = [p.name for p in (ws / "logs" / "slurm").iterdir()]
    assert any(name.startswith(array_id) for name in logs), logs  # submitit's folder, per task

    status = fwbench(ws, "status", "--matrix", str(matrix), "--stage", STAGE)
    assert re.search(
        rf"^interrupted {RUN_IDS[0]}-\w+: .*slurm job {job_id} ended CANCELLED.*resumes it",
        status.stdout,
        re.M,
    ), status.stdout

    finished = {r: fingerprint(run_dir(ws, r)) for r in RUN_IDS[1:]}
    res = fwbench(ws, *args)  # no --retry-failed: an interrupted run resumes by itself
    assert res.returncode == 0, res.stdout + res.stderr
    assert "submitted 1 run(s)" in res.stdout
    for r in RUN_IDS:
        assert_complete(run_dir(ws, r))
    assert {r: fingerprint(run_dir(ws, r)) for r in finished} == finished
    assert "stopped_by" not in victim.read_status()  # the relaunch cleared the old reason
    assert victim.log_path.read_text().count("=== fwbench run (slurm job") == 2


# One run whose training outlasts its 2-minute Slurm time limit: 30 short epochs on digits
# (about 2.5 s each on an idle 2-core machine; Slurm's warning comes 30-90 s into each task).
LONG_STAGE = {
    "stages": {
        "requeue": {
            "datasets": ["digits"],
            "models": ["mobilenetv2"],
            "precisions": ["fp32"],
            "seeds": [42],
            "frameworks": ["pytorch"],
            "epochs_override": 30,
            "subset": 300,
            "overrides": {"training": {"batch_size": 50, "eval_batch_size": 200}},
        }
    }
}


@pytest.mark.slurm
@pytest.mark.slow
def test_detached_run_past_its_time_limit_is_requeued_and_ends_done(tmp_path, slurm):
    ws, _ = make_workspace(tmp_path)
    matrix = ws / "configs" / "long.yaml"
    matrix.write_text(yaml.safe_dump(LONG_STAGE))
    # Slurm warns 30 s before the 2-minute limit, or up to a minute earlier (so after 30-90 s):
    # each task trains some epochs, is stopped and requeued, and the next task resumes the run.
    # scripts/slurm-local.sh lets a requeued task start again after 10 s (Slurm's default: 120).
    executor_yaml = {"slurm": {"time_min": 2, "signal_seconds": 30, "max_requeues": 6}}
    (ws / "configs" / "executor.yaml").write_text(yaml.safe_dump(executor_yaml))

    res = fwbench(ws, "run", "--matrix", str(matrix), *SLURM_ARGS, "--detach", timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    (job_id,) = re.findall(r"^  (\d+(?:_\d+)?)  digits-mobilenetv2", res.stdout, flags=re.M)
    assert "detached. Follow with: fwbench status" in res.stdout
    rd = run_dir(ws, "digits-mobilenetv2-fp32-s42-pytorch")
    assert rd.read_status()["slurm_job_id"] == job_id

    status = fwbench(ws, "status", "--matrix", str(matrix), timeout=60).stdout
    assert re.search(rf"\[slurm {job_id} (PENDING|RUNNING)\]", status), status

    # Slurm's own warning may come up to a minute early, so on an idle machine the run could end
    # before it: once a few epochs are done, send the task the same signal (`scancel --signal`,
    # as submitit's own tests do), unless Slurm already has.
    wait_until(lambda: len(rd.epochs()) >= 3 or rd.state == "done", 600, "three epochs")
    if rd.log_path.read_text().count("=== fwbench run (slurm job") < 2:
        subprocess.run(["scancel", job_id, "--signal", "USR2"], check=False)
    wait_until(lambda: rd.state in ("done", "failed", "diverged"), 900, "the run to end")
    log = rd.log_path.read_text()
    assert rd.state == "done", log[-3000:]
    assert log.count("=== fwbench run (slurm job") >= 2  # requeued at least once
    assert "resuming after epoch" in log  # ... and resumed from a checkpoint, not from scratch
    assert [r["epoch"] for r in rd.epochs()] == list(range(1, 31))
    assert rd.test_metrics()["n"] == 360  # --subset trains on 300; the test split stays whole
    done = fwbench(ws, "status", "--matrix", str(matrix), timeout=60).stdout
    assert re.search(
        r"^done digits-mobilenetv2-fp32-s42-pytorch-\w+: test acc \d\.\d{4}", done, re.M
    )
