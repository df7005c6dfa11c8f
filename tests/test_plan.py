"""``fwbench analyze`` prints verdicts, exclusions and seeds needed; ``fwbench plan`` answers the
seeds question before a matrix, from pilot runs or a given sd, with statsmodels' figures."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.power import TTestPower

from fwbench.analysis.plan import PAIRED, WITHIN, pilot_sd
from fwbench.analysis.power import family_alpha, seeds_needed
from verdictfixtures import OFFSETS, build_verdict_workspace


@pytest.fixture(scope="module")
def vws(tmp_path_factory):
    return build_verdict_workspace(tmp_path_factory.mktemp("plan"))


@pytest.mark.slow
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
    assert "│ different — beyond ±0.50 pp" in by_cell["digits/resnet50/fp32"]
    assert "inconclusive" in by_cell["digits/convnext_tiny/fp32"]
    assert "no verdict: 2 paired seed(s)" in by_cell["digits/mobilenetv2/amp"]
    sd = np.std(OFFSETS["convnext_tiny"], ddof=1)
    need = seeds_needed(sd, 0.005, family_alpha(0.05, 14), 0.8)  # planned for the family
    assert f"{need[0]} / {need[1]}" in by_cell["digits/convnext_tiny/fp32"]
    assert "decided with 5" in by_cell["digits/mobilenetv2/fp32"]
    assert "Holm over 14 tested rows" in res.out and "α/m = 0.05/14 = 0.00357" in res.out
    assert (vws / "analysis" / "seeds.tex").is_file()


def test_plan_from_a_given_sd_equals_statsmodels_power(vws, run_cli):
    res = run_cli("plan", "--sd", "0.005", "--stage", "vx", "--workspace", vws)
    assert res.code == 0, res.err
    assert "stage vx plans 5 seeds" in res.out
    # the stage's analysis corrects 3 cells x 1 arm pair x 6 metrics together
    assert "family of 18 (stage vx: 3 cell(s) x 1 arm pair(s) x 6 metrics)" in res.out
    row = next(ln for ln in res.out.splitlines() if "given sd" in ln)
    eq, diff = seeds_needed(0.005, 0.005, 0.05 / 18, 0.8)
    assert (eq, diff) == (23, 20)
    assert f"│ {eq} " in row and f"│ {diff} " in row and "│ no" in row  # 23 seeds > 5 planned
    relative = run_cli("plan", "--sd", "0.01", "--metric", "epoch_time_s", "--workspace", vws)
    expected = seeds_needed(0.01, math.log(1.05), 0.05, 0.8)[0]
    assert f"│ {expected} " in relative.out and "±5 %" in relative.out
    assert "family of 1 (no correction: give --family or --stage" in relative.out


def test_plan_for_a_given_family_matches_a_holm_aware_power_calculation(vws, run_cli):
    res = run_cli("plan", "--sd", "0.004", "--family", "12", "--workspace", vws)
    assert res.code == 0, res.err
    power = TTestPower()
    level = 0.05 / 12  # Holm's first step: every comparison has the power whatever its rank
    diff = math.ceil(power.solve_power(0.005 / 0.004, alpha=level, power=0.8))
    eq = math.ceil(power.solve_power(1.25, alpha=level / 2, power=0.9, alternative="larger"))
    row = next(ln for ln in res.out.splitlines() if "given sd" in ln)
    assert (eq, diff) == (16, 13) and f"│ {eq} " in row and f"│ {diff} " in row
    assert "α/12 = 0.00417" in res.out
    flat = run_cli("plan", "--sd", "0", "--family", "12", "--workspace", vws)
    assert flat.code == 0 and "cannot estimate (no variation)" in flat.out
    assert "100000" not in flat.out


def test_plan_from_pilot_runs_uses_the_paired_sd(vws, run_cli):
    res = run_cli("plan", "--pilot-stage", "vx", "--workspace", vws)
    assert res.code == 0, res.err
    row = next(
        ln for ln in res.out.splitlines()
        if "convnext_tiny" in ln and "test accuracy" in ln and "top-5" not in ln
    )  # fmt: skip
    sd = np.std(OFFSETS["convnext_tiny"], ddof=1)
    assert f"{sd * 100:.3g} %" in row and "paired differences (5)" in row
    # the pilot's own family: 3 cells x 1 arm pair x 6 metrics
    assert f"│ {seeds_needed(sd, 0.005, 0.05 / 18, 0.8)[0]} " in row
    assert "family of 18 (the pilot's cells x arm pairs x metrics)" in res.out


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
