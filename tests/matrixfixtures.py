"""A tiny real matrix (digits, MobileNetV2, 1 epoch, 40 images, both frameworks, 2 seeds) and
helpers to drive `fwbench run` / `fwbench status` as separate processes, as a user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

from fwbench.record.runs import RunDir
from runfixtures import find_run

STAGE = "tiny"
RUN_IDS = [
    f"digits-mobilenetv2-fp32-s{seed}-{fw}" for seed in (42, 43) for fw in ("pytorch", "keras")
]
TINY_MATRIX = {
    "stages": {
        STAGE: {
            "description": "test: 2 seeds x 2 frameworks, 1 epoch on 40 digits",
            "datasets": ["digits"],
            "models": ["mobilenetv2"],
            "precisions": ["fp32"],
            "seeds": [42, 43],
            "frameworks": ["pytorch", "keras"],
            "epochs_override": 1,
            "subset": 40,
            "overrides": {
                "training": {"batch_size": 16, "eval_batch_size": 64, "num_workers": 0},
            },
        }
    }
}


def _cli(ws: Path, args: tuple[str, ...]) -> tuple[list[str], dict[str, str]]:
    env = {**os.environ, "FWBENCH_WORKSPACE": str(ws), "COLUMNS": "250"}
    return [sys.executable, "-m", "fwbench.cli", *args], env


def fwbench(ws: Path, *args: str, **kw) -> subprocess.CompletedProcess:
    """Run the fwbench CLI in a child process with workspace ``ws``; capture its output."""
    cmd, env = _cli(ws, args)
    return subprocess.run(cmd, env=env, capture_output=True, text=True, **kw)


def start_fwbench(ws: Path, *args: str) -> subprocess.Popen:
    """Start the fwbench CLI in the background (to interrupt it)."""
    cmd, env = _cli(ws, args)
    return subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def make_workspace(root: Path) -> tuple[Path, Path]:
    """A workspace with digits prepared and the tiny matrix written; returns (ws, matrix file)."""
    ws = root / "ws"
    (ws / "configs").mkdir(parents=True)
    matrix = ws / "configs" / "tiny.yaml"
    matrix.write_text(yaml.safe_dump(TINY_MATRIX))
    done = fwbench(ws, "data", "prepare", "digits")
    assert done.returncode == 0, done.stdout + done.stderr
    return ws, matrix


def run_dir(ws: Path, readable_id: str) -> RunDir:
    """The run directory of ``readable_id`` (the run id without its settings hash) in ``ws``."""
    return find_run(ws / "runs", readable_id)


def wait_until(condition, timeout: float, what: str) -> None:
    """Poll ``condition()`` (a file-system check) until true; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def assert_complete(rd: RunDir) -> None:
    """A finished run directory: done, one epoch recorded, test metrics, spec, env, checkpoints."""
    assert rd.state == "done", rd.read_status()
    assert len(rd.epochs()) == 1
    test = rd.test_metrics()
    assert test is not None and 0.0 <= test["accuracy"] <= 1.0 and test["n"] > 0
    assert rd.spec_path.is_file() and rd.env_path.is_file()
    assert any(rd.checkpoints.iterdir())


def fingerprint(rd: RunDir) -> tuple:
    """What must not change if a finished run is not rerun: start time and the epoch records."""
    return (
        rd.read_status()["started_at"],
        rd.epochs_path.read_text(),
        json.dumps(rd.test_metrics()),
    )
