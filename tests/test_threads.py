"""The thread count is a run's setting: --parallel never changes it, a resume keeps it."""

from __future__ import annotations

import sys
import textwrap

import yaml
from rich.console import Console

from fwbench.config.train import load_train_config
from fwbench.core.paths import Workspace
from fwbench.record.runs import RunDir, make_spec
from fwbench.study.executors.local import LocalExecutor
from fwbench.study.matrix import plan
from fwbench.training.preflight import pin_threads
from matrixfixtures import STAGE, TINY_MATRIX
from specs import digits_spec

REPORT_THREADS = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    Path(sys.argv[1], "threads.txt").write_text(os.environ.get("FWBENCH_THREADS", "unset"))
    """
)


def test_parallel_slots_do_not_change_the_thread_count(tmp_path, monkeypatch):
    monkeypatch.delenv("FWBENCH_THREADS", raising=False)
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(TINY_MATRIX))
    runs = plan(Workspace(tmp_path), STAGE, matrix=tmp_path / "tiny.yaml")
    for r in runs:
        r.run_dir.write_spec(r.spec)
    command = lambda d: [sys.executable, "-c", REPORT_THREADS, str(d)]  # noqa: E731
    LocalExecutor(2, command_for=command, gpus=[], console=Console(quiet=True)).run(runs)
    assert {(r.run_dir.path / "threads.txt").read_text() for r in runs} == {"unset"}


def test_threads_setting_is_in_the_config_hash():
    base = load_train_config()
    pinned = base.model_copy(update={"training": base.training.model_copy(update={"threads": 2})})
    spec = dict(dataset="digits", model="mobilenetv2", precision="fp32", seed=1)
    a = make_spec(base, framework="pytorch", **spec)
    b = make_spec(pinned, framework="pytorch", **spec)
    assert a.config_hash != b.config_hash


def test_a_resumed_run_keeps_the_thread_count_it_started_with(tmp_path, monkeypatch):
    spec = digits_spec()
    rd = RunDir(tmp_path / "run")
    rd.write_spec(spec)
    monkeypatch.setenv("FWBENCH_THREADS", "3")
    assert pin_threads(spec, rd) == 3 and rd.read_status()["threads"] == 3
    monkeypatch.setenv("FWBENCH_THREADS", "1")  # resumed elsewhere, with another share
    assert pin_threads(spec, rd) == 3
    import os

    assert os.environ["FWBENCH_THREADS"] == "3"
