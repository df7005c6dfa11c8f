"""Statistics across seeds: the numbers equal scipy/statsmodels/pingouin and textbook formulas."""

from __future__ import annotations

import math
import statistics
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from fwbench.analysis.stats import (
    CONSTANT,
    INSUFFICIENT,
    N_RESAMPLES,
    RANDOM_STATE,
    TESTED,
    analyze,
    compare_samples,
    conclusion,
    describe,
    holm,
)
from fwbench.paths import Workspace
from fwbench.results import collect_runs
from runfixtures import ACC, build_workspace

PT = [0.912, 0.925, 0.918, 0.921]
KE = [0.871, 0.884, 0.866, 0.902, 0.879]


def test_describe_gives_mean_sd_and_t_interval():
    d = describe(PT)
    n, mean, sd = len(PT), statistics.fmean(PT), statistics.stdev(PT)
    half = stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n)
    assert d["n"] == 4
    assert d["mean"] == pytest.approx(mean, abs=1e-15)
    assert d["sd"] == pytest.approx(sd, rel=1e-12)
    assert (d["ci_low"], d["ci_high"]) == pytest.approx((mean - half, mean + half), rel=1e-12)
    assert d["ci_low"] < d["mean"] < d["ci_high"]


def test_describe_single_seed_and_constant_values():
    one = describe([0.8])
    assert one["n"] == 1 and one["mean"] == 0.8
    assert math.isnan(one["sd"]) and math.isnan(one["ci_low"])
    flat = describe([0.9, 0.9, 0.9])
    assert flat["sd"] == 0 and flat["ci_low"] == flat["ci_high"] == pytest.approx(0.9)


def test_compare_samples_equals_scipy_and_pingouin_and_hand_formulas():
    r = compare_samples(np.array(PT), np.array(KE))
    a, b = np.array(PT), np.array(KE)
    assert r["status"] == TESTED
    assert r["diff"] == pytest.approx(a.mean() - b.mean(), abs=1e-15)
    welch = stats.ttest_ind(a, b, equal_var=False)
    assert r["welch_p"] == welch.pvalue and r["welch_t"] == welch.statistic
    va, vb = a.var(ddof=1), b.var(ddof=1)
    t_hand = (a.mean() - b.mean()) / math.sqrt(va / 4 + vb / 5)
    dof = (va / 4 + vb / 5) ** 2 / ((va / 4) ** 2 / 3 + (vb / 5) ** 2 / 4)
    assert r["welch_t"] == pytest.approx(t_hand, rel=1e-12)
    assert r["welch_p"] == pytest.approx(2 * stats.t.sf(abs(t_hand), dof), rel=1e-9)
    mwu = stats.mannwhitneyu(a, b, alternative="two-sided")
    assert (r["mwu_u"], r["mwu_p"]) == (mwu.statistic, mwu.pvalue)
    assert r["mwu_u"] == 20.0  # every PyTorch seed beats every Keras seed: U = 4 x 5
    pooled = math.sqrt((3 * va + 4 * vb) / 7)
    g_hand = (a.mean() - b.mean()) / pooled * (1 - 3 / (4 * 9 - 9))
    assert r["hedges_g"] == pytest.approx(g_hand, rel=1e-12)


def test_bootstrap_ci_is_scipys_with_the_fixed_seed_and_contains_the_difference():
    a, b = np.array(PT), np.array(KE)
    r = compare_samples(a, b)
    ref = stats.bootstrap(
        (a, b),
        lambda x, y, axis: x.mean(axis) - y.mean(axis),
        vectorized=True,
        n_resamples=N_RESAMPLES,
        method="BCa",
        rng=np.random.default_rng(RANDOM_STATE),
    ).confidence_interval
    assert r["ci_method"] == "BCa"
    assert (r["ci_low"], r["ci_high"]) == pytest.approx((ref.low, ref.high), rel=1e-12)
    assert r["ci_low"] < r["diff"] < r["ci_high"]
    assert compare_samples(a, b)["ci_low"] == r["ci_low"]  # reproducible


def test_fewer_than_two_seeds_is_reported_not_tested():
    r = compare_samples(np.array([0.8]), np.array(KE))
    assert r["status"] == INSUFFICIENT
    assert "keras n=5" in r["note"] and "pytorch n=1" in r["note"]
    assert all(math.isnan(r[k]) for k in ("welch_p", "mwu_p", "hedges_g", "ci_low"))
    assert conclusion(r | {"metric": "test_accuracy"}).startswith("not tested: insufficient seeds")


def test_constant_samples_give_nan_welch_p_with_a_note_and_no_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = compare_samples(np.array([0.9, 0.9, 0.9]), np.array([0.9, 0.9, 0.9]))
    assert r["status"] == CONSTANT
    assert math.isnan(r["welch_p"]) and math.isnan(r["hedges_g"])
    assert "zero variance" in r["note"]
    assert r["mwu_p"] == 1.0
    assert (r["ci_low"], r["ci_high"]) == (0.0, 0.0)


def test_holm_equals_statsmodels_and_skips_nan():
    p = pd.Series([0.01, 0.04, 0.03, np.nan])
    adjusted, reject = holm(p)
    ref = multipletests([0.01, 0.04, 0.03], method="holm")[1]
    assert adjusted[:3].tolist() == pytest.approx(ref.tolist())
    assert adjusted[:3].tolist() == pytest.approx([0.03, 0.06, 0.06])  # by hand: 3p, 2p, max
    assert math.isnan(adjusted[3]) and pd.isna(reject[3])
    assert reject[:3].tolist() == [True, False, False]


def test_conclusion_follows_the_corrected_test_not_the_raw_p():
    row = compare_samples(np.array(PT), np.array(KE)) | {"metric": "test_accuracy"}
    text = conclusion(row | {"p_holm": 0.41, "significant": False})
    assert "no significant difference after Holm correction (p_holm = 0.41" in text
    assert "Hedges' g =" in text and "significant after" not in text.replace("no significant", "")
    yes = conclusion(row | {"p_holm": 0.004, "significant": True})
    assert "; significant after Holm correction (p_holm = 0.004" in yes


@pytest.fixture(scope="module")
def fixture_runs(tmp_path_factory):
    ws = Workspace(build_workspace(tmp_path_factory.mktemp("ws")))
    return collect_runs(ws, ["fx"])[0]


def test_analysis_of_fixture_reports_each_cell_state(fixture_runs):
    a = analyze(fixture_runs)
    acc = a.comparison[a.comparison["metric"] == "test_accuracy"].set_index(["model", "precision"])
    assert acc.loc[("mobilenetv2", "fp32"), "status"] == TESTED
    assert acc.loc[("mobilenetv2", "amp"), "status"] == CONSTANT
    assert (
        acc.loc[("resnet50", "fp32"), "status"] == INSUFFICIENT
    )  # keras: 1 done, failed, diverged
    assert acc.loc[("resnet50", "amp"), "status"] == INSUFFICIENT  # keras: none done
    tested = acc.loc[("mobilenetv2", "fp32")]
    ref = stats.ttest_ind(
        ACC[("mobilenetv2", "fp32", "pytorch")],
        ACC[("mobilenetv2", "fp32", "keras")],
        equal_var=False,
    )
    assert tested["welch_p"] == pytest.approx(ref.pvalue, rel=1e-12)
    assert tested["p_holm"] == pytest.approx(ref.pvalue)  # the only tested accuracy cell
    summary = a.summary.set_index(["model", "precision", "framework"])
    keras = summary.loc[("resnet50", "fp32", "keras")]
    assert (keras["n_done"], keras["n_failed"], keras["n_diverged"], keras["n_seeds"]) == (
        1,
        1,
        1,
        1,
    )
    assert summary.loc[("resnet50", "amp", "keras"), "n_other"] == 3  # pending, running, missing
    cov = a.coverage.set_index("stage").loc["fx"]
    assert cov[["done", "running", "failed", "diverged", "pending", "total"]].tolist() == [
        17,
        1,
        1,
        1,
        4,
        24,
    ]


def test_amp_speedup_and_accuracy_change(fixture_runs):
    amp = analyze(fixture_runs).amp.set_index(["model", "framework"])
    done = fixture_runs[fixture_runs["state"] == "done"]
    sel = done[(done["model"] == "mobilenetv2") & (done["framework"] == "pytorch")]
    t = sel.groupby("precision")["epoch_time_s"].mean()
    acc = sel.groupby("precision")["test_accuracy"].mean()
    row = amp.loc[("mobilenetv2", "pytorch")]
    assert row["speedup"] == pytest.approx(t["fp32"] / t["amp"])
    assert row["acc_change"] == pytest.approx(acc["amp"] - acc["fp32"])
    assert row["speedup_ci_low"] < row["speedup"] < row["speedup_ci_high"]
    assert amp.loc[("resnet50", "keras"), "status"] == INSUFFICIENT
