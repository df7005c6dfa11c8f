"""Every surface whole: piped to a file or a log at 80 columns, no table cuts a verdict, a
number or an option name (rich assumes 80 columns off a terminal and used to end cells in ``…``)."""

from __future__ import annotations

import os
import subprocess
import sys

import pandas as pd
import pytest

from fwbench.parity.params import ParamRow
from verdictfixtures import build_verdict_workspace

ELLIPSIS = "…"


def _piped(*args: str, workspace=None) -> str:
    """``fwbench ARGS`` with stdout a pipe (not a terminal) and COLUMNS=80, as in a log."""
    env = os.environ | {"COLUMNS": "80", "TERM": "dumb"}
    env.pop("TERMINAL_WIDTH", None)
    if workspace is not None:
        env["FWBENCH_WORKSPACE"] = str(workspace)
    proc = subprocess.run(
        [sys.executable, "-m", "fwbench.cli", *args],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


@pytest.fixture(scope="module")
def vws(tmp_path_factory):
    ws = build_verdict_workspace(tmp_path_factory.mktemp("surfaces"))
    _piped("collect", "--stage", "vx", "--stage", "vd", workspace=ws)
    return ws


@pytest.mark.slow
def test_piped_analyze_shows_every_verdict_and_interval_whole(vws):
    out = _piped("analyze", workspace=vws)
    assert ELLIPSIS not in out
    comparison = pd.read_csv(vws / "analysis" / "comparison.csv")
    lines = out.splitlines()
    for r in comparison.to_dict("records"):
        assert any(r["verdict_text"] in ln for ln in lines), r["verdict_text"]
    assert "different — beyond ±0.50 pp" in out and "equivalent within ±0.50 pp" in out
    assert "-0.04 pp [-5.01 pp, +4.93 pp]" in out  # difference and interval on one line
    assert "a − b [adjusted CI]" in out  # the header's brackets are text, not markup


@pytest.mark.slow
def test_piped_plan_config_show_and_help_are_whole(vws):
    plan = _piped("plan", "--sd", "0.004", "--family", "12", workspace=vws)
    assert ELLIPSIS not in plan and "seeds: equivalence" in plan
    row = next(ln for ln in plan.splitlines() if "given sd" in ln)
    assert "│ 16 " in row and "│ 13 " in row and "test accuracy" in row
    flat = _piped("plan", "--sd", "0", "--family", "12", workspace=vws)
    assert "cannot estimate (no variation)" in flat and ELLIPSIS not in flat
    shown = _piped("config", "show", workspace=vws)
    assert ELLIPSIS not in shown and "attribution-tiny-imagenet" in shown
    for args in (("--help",), ("train", "--help"), ("run", "--help"), ("plan", "--help")):
        text = _piped(*args)
        assert ELLIPSIS not in text, args
    assert "--epochs,--epochs-override" in _piped("train", "--help")
    assert "configs/train_config.yaml" in _piped("train", "--help")


def test_models_compare_table_is_whole_in_a_log(monkeypatch, capsys, tmp_path):
    from fwbench.cli import main
    from fwbench.parity import params

    row = ParamRow(
        "mobilenetv2", 32, 10, "library", 2236682, 2258634, 2236682, 2258634, 0, 0.0, 0.5,
        True, "(1, 10)", "(1, 10)", "2x2", "2x2", "2x2", True, True,
    )  # fmt: skip
    monkeypatch.setattr(params, "compare_all", lambda variant, progress=None: [row])
    monkeypatch.setattr(params, "add_keras_backends", lambda rows, arms: rows)
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setattr(sys, "argv", ["fwbench", "models", "compare", "--keras-backends", "",
                                      "--workspace", str(tmp_path)])  # fmt: skip
    with pytest.raises(SystemExit) as done:
        main()
    assert done.value.code in (0, None)
    out = capsys.readouterr().out
    assert ELLIPSIS not in out and "2,236,682" in out and "mobilenetv2" in out
