"""The Slurm executor against a real Slurm (`bash scripts/slurm-local.sh up`; CI starts one).

Skipped with the reason when no Slurm answers, except under CI=true, where that is a failure.
"""

from __future__ import annotations

import os
import re
import subprocess

import pytest
import yaml

from fwbench.config import SlurmExecutorConfig
from fwbench.executors.slurm import slurm_parameters
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


@pytest.mark.slurm
@pytest.mark.slow
def test_tiny_matrix_on_slurm_survives_a_killed_task(tmp_path, slurm):
    ws, matrix = make_workspace(tmp_path)
    executor_yaml = {"slurm": {"poll_seconds": 1, "array_parallelism": 2, "time_min": 30}}
    (ws / "configs" / "executor.yaml").write_text(yaml.safe_dump(executor_yaml))
    args = ("run", "--matrix", str(matrix), *SLURM_ARGS)

    runner = start_fwbench(ws, *args)
    victim = run_dir(ws, RUN_IDS[0])
    wait_until(lambda: victim.state == "running", 300, "the first array task to start training")
    job_id = victim.read_status()["slurm_job_id"]
    assert re.fullmatch(r"\d+_0", job_id)
    subprocess.run(["scancel", job_id], check=True)  # kill the task mid-run
    out, _ = runner.communicate(timeout=900)
    assert runner.returncode == 1, out
    array_id = job_id.split("_")[0]
    assert f"submitted 4 run(s) as Slurm job array {array_id}" in out
    assert re.search(
        rf"FAILED {RUN_IDS[0]} \(slurm job {job_id}\): slurm job {job_id} ended CANC", out
    )
    assert f"{STAGE}: 4 runs (3 done, 0 running, 0 interrupted, 1 failed" in out
    logs = [p.name for p in (ws / "logs" / "slurm").iterdir()]
    assert any(name.startswith(array_id) for name in logs), logs  # submitit's folder, per task

    status = fwbench(ws, "status", "--matrix", str(matrix), "--stage", STAGE)
    assert re.search(
        rf"^failed {RUN_IDS[0]}: slurm job {job_id} ended CANCELLED", status.stdout, re.M
    )

    finished = {r: fingerprint(run_dir(ws, r)) for r in RUN_IDS[1:]}
    res = fwbench(ws, *args, "--retry-failed")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "submitted 1 run(s)" in res.stdout
    for r in RUN_IDS:
        assert_complete(run_dir(ws, r))
    assert {r: fingerprint(run_dir(ws, r)) for r in finished} == finished
    assert victim.log_path.read_text().count("=== fwbench run (slurm job") == 2
