"""Shared fixtures: the CLI run in-process, and the workspaces tests start from."""

from __future__ import annotations

import os

# Keep tests to one thread per framework: the machine has 2 cores shared by everything.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import sys  # noqa: E402
from dataclasses import dataclass  # noqa: E402

import pytest  # noqa: E402


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def run_cli(capsys, monkeypatch):
    """Run ``fwbench ARGS...`` in-process through the real entry point; returns code/out/err."""
    from fwbench.cli import main

    def run(*args: str) -> CliResult:
        monkeypatch.setattr(sys, "argv", ["fwbench", *map(str, args)])
        monkeypatch.setenv("COLUMNS", "200")
        code = 0
        try:
            main()
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


@pytest.fixture
def ws(tmp_path, monkeypatch):
    """An empty workspace folder (``configs/`` made) that the CLI uses: ``FWBENCH_WORKSPACE``.

    A module that needs another kind of workspace defines its own ``ws``, which wins there.
    """
    root = tmp_path / "ws"
    (root / "configs").mkdir(parents=True)
    monkeypatch.setenv("FWBENCH_WORKSPACE", str(root))
    return root


@pytest.fixture(scope="module")
def synthetic_ws(tmp_path_factory):
    """A workspace with the synthetic dataset prepared, one per test module."""
    from fwbench.core.paths import Workspace
    from fwbench.data.prepare import prepare

    ws = Workspace(tmp_path_factory.mktemp("ws"))
    prepare(ws, "synthetic")
    return ws
