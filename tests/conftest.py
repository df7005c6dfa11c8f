"""Shared fixtures: small datasets written in the exact official on-disk formats."""

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
