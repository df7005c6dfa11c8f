"""``fwbench analyze`` prints verdicts, exclusions and seeds needed; ``fwbench plan`` answers the
seeds question before a matrix, from pilot runs or a given sd, with statsmodels' figures."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from fwbench.analysis.plan import PAIRED, WITHIN, pilot_sd
from fwbench.analysis.power import seeds_needed
from verdictfixtures import OFFSETS, build_verdict_workspace


@pytest.fixture(scope="module")
def vws(tmp_path_factory):
    return build_verdict_workspace(tmp_path_factory.mktemp("plan"))


def test_analyze_prints_exclusions_verdicts_and_seeds_needed(vws, run_cli):
    assert run_cli("collect", "--stage", "vx", "--stage", "vd", "--workspace", vws).code == 0
    res = run_cli("analyze", "--workspace", vws)
    assert res.code == 0, res.err
    assert "digits/mobilenetv2/amp keras: excluded 2 diverged, 1 failed" in res.out
    assert "digits/resnet50/amp keras: excluded 1 diverged, 1 failed" in res.out
    assert "pytorch: excluded" not in res.out
    lines = [ln for ln in res.out.splitlines() if "test accuracy" in ln and "top-5" not in ln]
    by_cell = {ln.split("│")[1].strip(): ln for ln in lines if "│" in ln}
    assert "equivalent within ±0.50 pp" in by_cell["digits/mobilenetv2/fp32"]
    assert "│ different" in by_cell["digits/resnet50/fp32"]
    assert "inconclusive" in by_cell["digits/convnext_tiny/fp32"]
    assert "no verdict: 2 paired seed(s)" in by_cell["digits/mobilenetv2/amp"]
    sd = np.std(OFFSETS["convnext_tiny"], ddof=1)
    need = seeds_needed(sd, 0.005, 0.05, 0.8)
    assert f"{need[0]} / {need[1]}" in by_cell["digits/convnext_tiny/fp32"]
    assert "Holm over 14 tests" in res.out
    assert (vws / "analysis" / "seeds.tex").is_file()


def test_plan_from_a_given_sd_equals_statsmodels_power(vws, run_cli):
    res = run_cli("plan", "--sd", "0.005", "--stage", "vx", "--workspace", vws)
    assert res.code == 0, res.err
    assert "stage vx plans 5 seeds" in res.out
    row = next(ln for ln in res.out.splitlines() if "given sd" in ln)
    assert "│ 11 " in row and "│ 10 " in row and "│ no" in row  # 11 seeds > 5 planned
    relative = run_cli("plan", "--sd", "0.01", "--metric", "epoch_time_s", "--workspace", vws)
    expected = seeds_needed(0.01, math.log(1.05), 0.05, 0.8)[0]
    assert f"│ {expected} " in relative.out and "±5 %" in relative.out


def test_plan_from_pilot_runs_uses_the_paired_sd(vws, run_cli):
    res = run_cli("plan", "--pilot-stage", "vx", "--workspace", vws)
    assert res.code == 0, res.err
    row = next(
        ln for ln in res.out.splitlines()
        if "convnext_tiny" in ln and "test accuracy" in ln and "top-5" not in ln
    )  # fmt: skip
    sd = np.std(OFFSETS["convnext_tiny"], ddof=1)
    assert f"{sd * 100:.3g} %" in row and "paired differences (5)" in row
    assert f"│ {seeds_needed(sd, 0.005, 0.05, 0.8)[0]} " in row


def test_pilot_sd_falls_back_to_the_within_arm_sd_times_sqrt2():
    a = pd.Series([0.90, 0.92, 0.91], index=[1, 2, 3])
    b = pd.Series([0.80, 0.83], index=[4, 5])  # no seed in common: no pairs
    sd, source, n = pilot_sd(a, b)
    pooled = math.sqrt((2 * np.var(a, ddof=1) + 1 * np.var(b, ddof=1)) / 3)
    assert source == WITHIN and n == 5 and sd == pytest.approx(math.sqrt(2) * pooled)
    sd, source, n = pilot_sd(a, a + pd.Series([0.01, 0.0, 0.02], index=[1, 2, 3]))
    assert source == PAIRED and n == 3 and sd == pytest.approx(0.01)


def test_plan_without_pilot_runs_is_a_one_line_error(tmp_path, run_cli):
    res = run_cli("plan", "--workspace", tmp_path)
    assert res.code == 2 and "no pilot runs" in res.err and "--sd" in res.err
    res = run_cli("plan", "--sd", "0.01", "--metric", "acc", "--workspace", tmp_path)
    assert res.code == 2 and "unknown metric 'acc'" in res.err
