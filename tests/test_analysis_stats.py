"""Statistics across seeds: paired, equivalence and power figures equal scipy/statsmodels, and
fixtures built to be different, equivalent and inconclusive get exactly that verdict."""

from __future__ import annotations

import math
import statistics
import warnings

import numpy as np
import pandas as pd
import pingouin as pg
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import TTestPower
from statsmodels.stats.weightstats import ttost_paired

from fwbench.analysis.diverged_seeds import divergence_display, fisher_p
from fwbench.analysis.paired import CEILING, CONSTANT, INSUFFICIENT, TESTED, paired_compare
from fwbench.analysis.pairs import comparisons
from fwbench.analysis.per_class import per_class_table
from fwbench.analysis.power import family_alpha, seeds_needed
from fwbench.analysis.stats import analyze, describe
from fwbench.analysis.verdicts import (
    BEYOND,
    EQUIVALENT,
    INCONCLUSIVE,
    NO_TEST,
    WITHIN,
    decide,
    holm,
    holm_levels,
    verdict_table,
)
from fwbench.config.analysis import MarginConfig, load_analysis_config
from fwbench.core.errors import FwbenchError
from fwbench.core.paths import Workspace
from fwbench.study.collect import collect_runs
from verdictfixtures import BASE, EXPECTED, OFFSETS, SEEDS, build_verdict_workspace

CFG = load_analysis_config()
PT = pd.Series([0.912, 0.925, 0.918, 0.921, 0.915], index=[1, 2, 3, 4, 5])
KE = pd.Series([0.871, 0.884, 0.866, 0.902, 0.879], index=[1, 2, 3, 4, 5])
ACC_MARGIN = MarginConfig(value=0.005, scale="absolute")
SPEED_MARGIN = MarginConfig(value=0.05, scale="relative")


def test_describe_gives_mean_sd_and_t_interval():
    d = describe(PT)
    n, mean, sd = len(PT), statistics.fmean(PT), statistics.stdev(PT)
    half = stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n)
    assert d["n"] == 5 and d["mean"] == pytest.approx(mean, abs=1e-15)
    assert d["sd"] == pytest.approx(sd, rel=1e-12)
    assert (d["ci_low"], d["ci_high"]) == pytest.approx((mean - half, mean + half), rel=1e-12)
    assert not d["truncated"]


def test_bounded_metric_interval_stays_inside_its_bounds():
    # two seeds far apart: the t interval is [-163 %, 253 %]; an accuracy CI stays in [0, 1]
    free = describe([0.10, 0.80])
    assert free["ci_low"] < -1 and free["ci_high"] > 2
    bounded = describe([0.10, 0.80], bounds=(0.0, 1.0))
    assert (bounded["ci_low"], bounded["ci_high"], bounded["truncated"]) == (0.0, 1.0, True)
    assert bounded["mean"] == pytest.approx(0.45)
    near = describe([0.995, 0.999, 1.0], bounds=(0.0, 1.0))
    assert near["ci_high"] == 1.0 and near["truncated"] and 0.98 < near["ci_low"] < 0.998


def test_paired_statistics_equal_scipy_statsmodels_and_pingouin():
    r = paired_compare(PT, KE, ACC_MARGIN, CFG)
    a, b = PT.to_numpy(), KE.to_numpy()
    d = a - b
    assert r["status"] == TESTED and r["n_pairs"] == 5
    assert r["diff"] == pytest.approx(d.mean(), abs=1e-15)
    t = stats.ttest_rel(a, b)
    assert (r["t"], r["p_t"]) == (t.statistic, t.pvalue)
    t_hand = d.mean() / (d.std(ddof=1) / math.sqrt(5))
    assert r["t"] == pytest.approx(t_hand, rel=1e-12)
    w = stats.wilcoxon(a, b)
    assert (r["w"], r["p_w"]) == (w.statistic, w.pvalue)
    assert r["p_w"] == pytest.approx(2 / 2**5)  # all five differences positive: exact floor
    assert r["p_tost"] == ttost_paired(a, b, -0.005, 0.005)[0]
    assert r["corr"] == pytest.approx(stats.pearsonr(a, b).statistic, rel=1e-12)
    assert r["hedges_g"] == pytest.approx(pg.compute_effsize(a, b, paired=True, eftype="hedges"))
    welch = stats.ttest_ind(a, b, equal_var=False)
    assert (r["welch_t"], r["p_welch"]) == (welch.statistic, welch.pvalue)
    mwu = stats.mannwhitneyu(a, b, alternative="two-sided")
    assert (r["mwu_u"], r["p_mwu"]) == (mwu.statistic, mwu.pvalue)
    assert r["sd_diff"] == pytest.approx(d.std(ddof=1), rel=1e-12)


def test_below_bootstrap_min_pairs_the_interval_is_scipys_t_interval():
    r = paired_compare(PT, KE, ACC_MARGIN, CFG)
    d = (PT - KE).to_numpy()
    ref = stats.t.interval(0.95, df=4, loc=d.mean(), scale=stats.sem(d))
    assert len(d) < CFG.bootstrap_min_pairs and r["ci_method"] == "t" and r["ci_level"] == 0.95
    assert (r["ci_low"], r["ci_high"]) == pytest.approx(ref, rel=1e-12)
    # three pairs: a bootstrap would return the range of the seeds; the t interval is wider
    three = paired_compare(PT[:3], KE[:3], ACC_MARGIN, CFG)
    d3 = (PT[:3] - KE[:3]).to_numpy()
    assert three["ci_low"] < d3.min() and three["ci_high"] > d3.max()


BOOT = CFG.model_copy(update={"bootstrap_min_pairs": 5})


def test_from_bootstrap_min_pairs_on_the_interval_is_scipys_bca_of_the_differences():
    r = paired_compare(PT, KE, ACC_MARGIN, BOOT)
    d = (PT - KE).to_numpy()
    ref = stats.bootstrap(
        (d,), np.mean, n_resamples=CFG.bootstrap_resamples, method="BCa",
        rng=np.random.default_rng(CFG.random_state),
    ).confidence_interval  # fmt: skip
    assert r["ci_method"] == "BCa"
    assert (r["ci_low"], r["ci_high"]) == pytest.approx((ref.low, ref.high), rel=1e-12)
    assert d.min() <= r["ci_low"] < r["diff"] < r["ci_high"] <= d.max()
    assert paired_compare(PT, KE, ACC_MARGIN, BOOT)["ci_low"] == r["ci_low"]  # reproducible


def test_degenerate_bca_falls_back_to_percentile_and_says_so(monkeypatch):
    real = stats.bootstrap

    def degenerate_bca(data, statistic, **kw):
        res = real(data, statistic, **kw)
        if kw["method"] == "BCa":
            warnings.warn("The BCa confidence interval cannot be calculated.",
                          stats.DegenerateDataWarning, stacklevel=2)  # fmt: skip
        return res

    monkeypatch.setattr(stats, "bootstrap", degenerate_bca)
    r = paired_compare(PT, KE, ACC_MARGIN, BOOT)
    assert r["ci_method"] == "percentile (BCa degenerate with 5 seeds)"
    ref = real(
        ((PT - KE).to_numpy(),), np.mean, n_resamples=CFG.bootstrap_resamples,
        method="percentile", rng=np.random.default_rng(CFG.random_state),
    ).confidence_interval  # fmt: skip
    assert (r["ci_low"], r["ci_high"]) == pytest.approx((ref.low, ref.high))


def test_relative_margin_is_tost_on_the_log_ratio_as_statsmodels():
    a = pd.Series([10.2, 10.5, 10.1, 10.4], index=[1, 2, 3, 4])
    b = pd.Series([10.0, 10.4, 10.1, 10.2], index=[1, 2, 3, 4])
    r = paired_compare(a, b, SPEED_MARGIN, CFG)
    assert r["p_tost"] == ttost_paired(a.to_numpy(), b.to_numpy(), 0.95, 1.05, transform=np.log)[0]
    log_d = np.log(a.to_numpy()) - np.log(b.to_numpy())
    assert r["diff"] == pytest.approx(math.expm1(log_d.mean()))  # ratio of geometric means - 1
    assert r["p_t"] == pytest.approx(stats.ttest_rel(np.log(a), np.log(b)).pvalue)


def test_constant_and_ceiling_differences_get_no_test_and_stay_outside_the_family():
    same = paired_compare(PT, PT, ACC_MARGIN, CFG)
    assert same["status"] == CONSTANT and same["diff"] == 0 and math.isnan(same["p_t"])
    assert same["note"] == "all seeds identical" and math.isnan(same["ci_low"])
    shifted = paired_compare(PT + 0.01, PT, ACC_MARGIN, CFG)
    assert shifted["status"] == CONSTANT and shifted["diff"] == pytest.approx(0.01)
    assert shifted["note"] == "the same difference in every seed"
    top = pd.Series(1.0, index=PT.index)
    ceiling = paired_compare(top, top, ACC_MARGIN, CFG, bounds=(0.0, 1.0))
    assert ceiling["status"] == CEILING and ceiling["note"] == "ceiling: 100 % in every run"
    noise = pd.Series([0.0004, -0.0003, 0.0001, -0.0002, 0.0003], index=PT.index)
    runs = _runs({"pytorch": PT + noise, "keras": PT}, test_top5_accuracy={
        "pytorch": top, "keras": top})  # fmt: skip
    table = verdict_table(runs, CFG).set_index("metric")
    assert table.loc["test_top5_accuracy", "verdict"] == NO_TEST
    top5 = table.loc["test_top5_accuracy", "verdict_text"]
    assert top5 == "ceiling: 100 % in every run (no test)"
    # only the varying accuracy is tested: a family of one, at the plain level
    assert (table["family_size"] == 1).all() and table.loc["test_accuracy", "ci_level"] == 0.95
    assert math.isnan(table.loc["test_top5_accuracy", "p_t_holm"])
    runs = _runs({"pytorch": PT + 0.01, "keras": PT})
    acc = verdict_table(runs, CFG).set_index("metric").loc["test_accuracy"]
    assert acc["verdict"] == NO_TEST and acc["family_size"] == 0
    assert acc["verdict_text"] == "the same difference in every seed (no test)"


def test_fewer_pairs_than_min_seeds_is_not_tested():
    r = paired_compare(PT[:2], KE, ACC_MARGIN, CFG)
    assert r["status"] == INSUFFICIENT and r["n_pairs"] == 2
    assert r["note"] == "2 paired seed(s) finished; a verdict needs 3"
    assert all(math.isnan(r[k]) for k in ("p_t", "p_w", "p_tost", "ci_low", "p_welch"))


def test_seeds_needed_equal_statsmodels_power():
    power = TTestPower()
    eq, diff = seeds_needed(0.005, 0.005, 0.05, 0.8)
    # within +-delta from a 95 % interval is TOST at 2.5 %: one-sided power 0.9 at alpha / 2
    assert eq == math.ceil(power.solve_power(1.0, alpha=0.025, power=0.9, alternative="larger"))
    assert diff == math.ceil(power.solve_power(1.0, alpha=0.05, power=0.8))
    assert (eq, diff) == (13, 10)
    # the smallest n that reaches the power: n - 1 does not
    assert power.power(1.0, eq - 1, 0.025, alternative="larger") < 0.9
    assert power.power(1.0, eq, 0.025, alternative="larger") >= 0.9
    assert all(math.isnan(x) for x in seeds_needed(0.0, 0.005, 0.05, 0.8))  # no variation
    assert seeds_needed(1.0, 0.001, 0.05, 0.8) == (math.inf, math.inf)
    assert all(math.isnan(x) for x in seeds_needed(math.nan, 0.005, 0.05, 0.8))


def test_seeds_are_planned_at_the_level_holm_applies_to_a_family():
    # sd 0.004 against +-0.5 pp, a family of 12: each comparison planned at 0.05 / 12
    assert family_alpha(0.05, 12) == pytest.approx(0.05 / 12)
    eq, diff = seeds_needed(0.004, 0.005, family_alpha(0.05, 12), 0.8)
    power = TTestPower()
    effect, level = 0.005 / 0.004, 0.05 / 12
    assert diff == math.ceil(power.solve_power(effect, alpha=level, power=0.8))
    assert eq == math.ceil(
        power.solve_power(effect, alpha=level / 2, power=0.9, alternative="larger")
    )
    assert (eq, diff) == (16, 13)  # uncorrected, the same sd needs 9 and 8
    assert seeds_needed(0.004, 0.005, 0.05, 0.8) == (9, 8)


def test_holm_equals_statsmodels_and_skips_nan():
    p = pd.Series([0.01, 0.04, 0.03, np.nan])
    adjusted = holm(p, 0.05)
    assert adjusted[:3].tolist() == pytest.approx(
        multipletests([0.01, 0.04, 0.03], method="holm")[1]
    )
    assert adjusted[:3].tolist() == pytest.approx([0.03, 0.06, 0.06])  # by hand: 3p, 2p, max
    assert math.isnan(adjusted[3])


def _runs(arms: dict[str, pd.Series], model: str = "mobilenetv2", **columns) -> pd.DataFrame:
    """A collected runs table of one cell: every arm's test accuracy per seed, all done."""
    rows = [
        {"run_id": f"{model}-s{seed}-{fw}", "stage": "t", "dataset": "digits", "model": model,
         "precision": "fp32", "variant": "library", "seed": seed, "framework": fw,
         "state": "done", "test_accuracy": acc} | {k: v[fw][seed] for k, v in columns.items()}
        for fw, values in arms.items() for seed, acc in values.items()
    ]  # fmt: skip
    return pd.DataFrame(rows)


def test_every_arm_is_compared_with_pytorch_and_the_keras_arms_with_each_other():
    arms = ["keras-torch", "pytorch", "keras", "keras-jax"]
    assert comparisons(arms) == [
        ("pytorch", "keras"), ("pytorch", "keras-jax"), ("pytorch", "keras-torch"),
        ("keras", "keras-jax"), ("keras", "keras-torch"), ("keras-jax", "keras-torch"),
    ]  # fmt: skip
    shift = {"pytorch": 0.0, "keras": -0.03, "keras-jax": -0.03, "keras-torch": 0.0}
    noise = pd.Series([0.0004, -0.0003, 0.0001, -0.0002, 0.0003], index=PT.index)
    # each arm its own per-seed noise, so no pair differs by a constant
    runs = _runs({fw: PT + s + noise * i for i, (fw, s) in enumerate(shift.items())})
    table = verdict_table(runs, CFG).set_index("comparison")
    assert len(table) == 6 and (table["family_size"] == 6).all()
    assert table.loc["pytorch - keras", "verdict"] == BEYOND
    assert table.loc["pytorch - keras-torch", "verdict"] == EQUIVALENT
    assert table.loc["keras - keras-jax", "verdict"] == EQUIVALENT
    assert table.loc["keras-jax - keras-torch", "diff"] == pytest.approx(-0.03 - noise.mean())
    ps = table["p_t"].to_numpy()
    assert table["p_t_holm"].tolist() == pytest.approx(multipletests(ps, method="holm")[1])


def test_disagreements_are_explained_in_one_sentence_each():
    # three pairs: paired t rejects, Wilcoxon cannot (its floor is 0.25)
    three = _runs({"pytorch": PT[:3] + 0.04 + 0.002 * PT.index[:3], "keras": PT[:3]})
    row = verdict_table(three, CFG).iloc[0]
    assert row["verdict"] == BEYOND and row["verdict_text"] == "different — beyond ±0.50 pp"
    assert "with 3 pairs cannot go below p = 0.25" in row["why"]
    assert row["why"].count(". ") + 1 == len([s for s in row["why"].split(". ") if s])
    # alone the paired t rejects; in a family of two (Holm) it does not, nor does the interval
    noise = pd.Series([0.0004, -0.0003, 0.0001, -0.0002, 0.0003], index=PT.index)
    shift = 0.0004 + noise
    runs = _runs({"pytorch": PT + shift, "keras": PT}, test_macro_f1={
        "pytorch": PT + shift, "keras": PT})  # fmt: skip
    row = verdict_table(runs, CFG).set_index("metric").loc["test_accuracy"]
    assert row["p_t"] < 0.05 < row["p_t_holm"] and row["ci_low"] < 0 < row["ci_high"]
    assert row["verdict"] == EQUIVALENT and row["family_size"] == 2
    assert "corrected for the 2 tests of the family (Holm p = " in row["why"]


def test_the_issues_examples_get_the_verdict_their_interval_shows():
    # differences 2, 3, 5 pp from 3 seeds: p = 0.063, the t interval includes 0
    base = PT[:3]
    row = verdict_table(_runs({"pytorch": base + [0.02, 0.03, 0.05], "keras": base}), CFG)
    row = row.iloc[0]
    assert row["p_t"] == pytest.approx(0.0627, abs=1e-3) and row["verdict"] == INCONCLUSIVE
    assert row["ci_low"] < 0 < row["ci_high"]
    # a consistent 0.40 pp: the interval excludes 0 and lies inside +-0.5 pp
    small = pd.Series([0.0036, 0.0044, 0.0040, 0.0038, 0.0042], index=PT.index)
    row = verdict_table(_runs({"pytorch": PT + small, "keras": PT}), CFG).iloc[0]
    assert row["verdict"] == WITHIN and 0 < row["ci_low"] < row["ci_high"] < 0.005
    assert row["verdict_text"] == "different but within ±0.50 pp"
    assert (
        "(95 % CI [+0.36 pp, +0.44 pp], Holm-adjusted level): different but within"
        in (row["conclusion"])
    )


def test_decide_reads_the_four_cases_of_the_interval_against_the_margin():
    assert decide(0.6, 0.9, 0.5) == BEYOND and decide(-0.9, -0.51, 0.5) == BEYOND
    assert decide(0.1, 0.4, 0.5) == WITHIN and decide(-0.4, -0.01, 0.5) == WITHIN
    assert decide(-0.4, 0.4, 0.5) == EQUIVALENT
    assert decide(-0.4, 0.6, 0.5) == INCONCLUSIVE and decide(0.1, 0.6, 0.5) == INCONCLUSIVE
    assert decide(-0.6, 0.6, 0.5) == INCONCLUSIVE


@pytest.mark.slow
def test_holm_levels_give_intervals_that_exclude_zero_exactly_when_holm_rejects():
    rng = np.random.default_rng(7)
    for _ in range(200):
        p = pd.Series(rng.uniform(0, 0.08, rng.integers(1, 15)) ** rng.uniform(0.5, 3))
        levels = holm_levels(p, 0.05)
        reject = multipletests(p.to_numpy(), alpha=0.05, method="holm")[0]
        assert ((p <= levels).to_numpy() == reject).all()
        assert (levels >= 0.05 / len(p)).all() and (levels <= 0.05).all()


def _random_study(rng: np.random.Generator) -> pd.DataFrame:
    """A few cells of random paired data: accuracies and epoch times, 3 to 24 seeds."""
    frames = []
    for model in ("mobilenetv2", "resnet50", "convnext_tiny")[: rng.integers(1, 4)]:
        n = int(rng.choice([3, 4, 5, 8, 12, 24]))
        seeds = pd.Index(range(1, n + 1))
        base = pd.Series(rng.uniform(0.6, 0.95, n), index=seeds)
        d = rng.normal(rng.choice([0, 0.002, 0.006, 0.02]), rng.choice([0.0005, 0.003, 0.01]), n)
        time = pd.Series(rng.uniform(9, 11, n), index=seeds)
        ratio = np.exp(rng.normal(rng.choice([0, 0.03, 0.1]), rng.choice([0.005, 0.05]), n))
        frames.append(_runs({"pytorch": base + d, "keras": base}, model, epoch_time_s={
            "pytorch": time * ratio, "keras": time}))  # fmt: skip
    return pd.concat(frames, ignore_index=True)


@pytest.mark.slow
def test_no_verdict_contradicts_the_interval_it_shows_over_random_paired_data():
    cfg = CFG.model_copy(update={"bootstrap_resamples": 999})
    rng = np.random.default_rng(2018)
    seen = set()
    for _ in range(40):
        table = verdict_table(_random_study(rng), cfg)
        for r in table.to_dict("records"):
            seen.add(r["verdict"])
            if r["status"] != TESTED:
                assert r["verdict"] == NO_TEST and math.isnan(r["ci_low"])
                continue
            low, high, delta = r["ci_low"], r["ci_high"], r["margin"]
            assert low <= r["diff"] <= high
            within, excludes_zero = -delta < low and high < delta, low > 0 or high < 0
            beyond = low > delta or high < -delta
            expected = {BEYOND: beyond, WITHIN: within and excludes_zero,
                        EQUIVALENT: within and not excludes_zero,
                        INCONCLUSIVE: not within and not beyond}  # fmt: skip
            assert expected[r["verdict"]], r
            assert sum(expected.values()) == 1
            if r["ci_method"] == "t":  # its level is the Holm step: 0 out <=> Holm rejects
                assert excludes_zero == (r["p_t_holm"] <= cfg.alpha), r
            assert r["family_size"] == (table["status"] == TESTED).sum()
    assert {BEYOND, WITHIN, EQUIVALENT, INCONCLUSIVE} <= seen


def test_per_class_accuracy_differences_are_paired_means():
    per_class = {
        fw: {s: f"[{0.8 + 0.01 * s + off}, {0.9 - 0.01 * s}]" for s in PT.index}
        for fw, off in (("pytorch", 0.02), ("keras", 0.0))
    }
    runs = _runs({"pytorch": PT, "keras": KE}, test_per_class_accuracy=per_class)
    table = per_class_table(runs, CFG).set_index("class")
    assert table.loc[0, "diff"] == pytest.approx(0.02) and table.loc[1, "diff"] == 0
    assert table.loc[0, "mean_a"] == pytest.approx(0.85) and table.loc[0, "n_pairs"] == 5
    # a class without test images in some seeds (null) counts only where both arms have it
    per_class["keras"][1] = per_class["pytorch"][1] = "[0.8, null]"
    runs = _runs({"pytorch": PT, "keras": KE}, test_per_class_accuracy=per_class)
    table = per_class_table(runs, CFG).set_index("class")
    assert table.loc[1, "n_pairs"] == 4 and table.loc[0, "n_pairs"] == 5
    assert table.loc[1, "mean_a"] == pytest.approx(np.mean([0.9 - 0.01 * s for s in (2, 3, 4, 5)]))


def test_analysis_config_rejects_unknown_metric_missing_margin_and_bad_ratio(tmp_path):
    path = tmp_path / "analysis.yaml"
    path.write_text("margins:\n  test_acuracy: {value: 0.01}\n")
    with pytest.raises(FwbenchError, match="unknown metric 'test_acuracy'"):
        load_analysis_config(path)
    path.write_text("margins:\n  epoch_time_s: {value: 1.5, scale: relative}\n")
    with pytest.raises(FwbenchError, match="relative margin must be below 1"):
        load_analysis_config(path)
    path.write_text("min_seeds: 5\nmargins:\n  test_accuracy: {value: 0.01}\n")
    cfg = load_analysis_config(path)
    assert cfg.min_seeds == 5 and cfg.margins["test_accuracy"].value == 0.01
    assert cfg.margins["epoch_time_s"].scale == "relative"  # the rest keeps the defaults


@pytest.fixture(scope="module")
def verdict_runs(tmp_path_factory):
    ws = Workspace(build_verdict_workspace(tmp_path_factory.mktemp("vws")))
    return collect_runs(ws, ["vx", "vd"])[0]


@pytest.fixture(scope="module")
def verdicts(verdict_runs):
    table = analyze(verdict_runs).comparison
    return table[table["metric"] == "test_accuracy"].set_index(["model", "precision"])


@pytest.mark.slow
@pytest.mark.parametrize("model", list(EXPECTED))
def test_fixture_built_for_a_verdict_gets_it(verdicts, model):
    row = verdicts.loc[(model, "fp32")]
    assert row["verdict"] == EXPECTED[model]
    pt = np.array(BASE)
    ke = np.round(pt + np.array(OFFSETS[model]), 6)
    assert row["p_t"] == pytest.approx(stats.ttest_rel(pt, ke).pvalue, rel=1e-9)
    assert row["p_tost"] == pytest.approx(ttost_paired(pt, ke, -0.005, 0.005)[0], rel=1e-9)
    assert row["n_pairs"] == len(SEEDS)


@pytest.mark.slow
def test_verdicts_are_holm_corrected_over_the_stated_family(verdict_runs):
    table = analyze(verdict_runs).comparison
    tested = table[table["status"] == TESTED]
    assert (table["family_size"] == len(tested)).all()
    assert tested["p_t_holm"].tolist() == pytest.approx(
        multipletests(tested["p_t"], method="holm")[1].tolist()
    )
    # identical seeds (the amp cells' speed, the fixture's equal amp accuracies) are outside
    assert len(tested) == 14 and (table["status"] == CONSTANT).sum() == 16
    levels = holm_levels(tested["p_t"], 0.05)
    assert tested["ci_level"].tolist() == pytest.approx((1 - levels).tolist())
    text = table.set_index(["model", "precision", "metric"]).loc[
        ("mobilenetv2", "fp32", "test_accuracy"), "conclusion"
    ]
    assert text.startswith("PyTorch − Keras test accuracy = -0.01 pp (99.5 % CI [")
    assert "Holm-adjusted level): equivalent within ±0.50 pp (paired t p_holm = " in text


@pytest.mark.slow
def test_diverged_and_failed_runs_are_excluded_from_every_test_and_counted(verdict_runs, verdicts):
    none = verdicts.loc[("mobilenetv2", "amp")]
    assert none["verdict"] == "no verdict" and none["n_pairs"] == 2
    assert none["excluded_b"] == "2 diverged, 1 failed" and none["n_excluded_a"] == 0
    assert math.isnan(none["p_t"]) and math.isnan(none["ci_low"])
    three = verdicts.loc[("resnet50", "amp")]
    assert three["n_pairs"] == 3 and three["n_b"] == 3 and three["verdict"] == NO_TEST
    assert three["verdict_text"] == "all seeds identical (no test)"
    # the diverged run's test.json says 0.10: it never enters a mean
    assert three["mean_b"] == pytest.approx(np.mean(BASE[:3]))
    summary = analyze(verdict_runs).summary.set_index(["model", "precision", "framework"])
    keras = summary.loc[("mobilenetv2", "amp", "keras")]
    assert (keras["n_done"], keras["n_diverged"], keras["n_failed"], keras["n_seeds"]) == (
        2,
        2,
        1,
        2,
    )
    assert keras["test_accuracy_mean"] == pytest.approx(np.mean(BASE[:2]))


@pytest.mark.slow
def test_min_seeds_comes_from_the_config(verdict_runs):
    strict = analyze(verdict_runs, CFG.model_copy(update={"min_seeds": 4})).comparison
    acc = strict[strict["metric"] == "test_accuracy"].set_index(["model", "precision"])
    assert acc.loc[("resnet50", "amp"), "verdict"] == "no verdict"
    assert acc.loc[("resnet50", "amp"), "note"] == "3 paired seed(s) finished; a verdict needs 4"
    loose = analyze(verdict_runs, CFG.model_copy(update={"min_seeds": 2})).comparison
    acc = loose[loose["metric"] == "test_accuracy"].set_index(["model", "precision"])
    assert acc.loc[("mobilenetv2", "amp"), "verdict"] == NO_TEST  # two identical pairs


@pytest.mark.slow
def test_top5_ece_and_per_class_join_the_analysis(verdict_runs):
    a = analyze(verdict_runs)
    metrics = set(a.comparison["metric"])
    assert {"test_top5_accuracy", "test_ece", "test_accuracy", "test_macro_f1"} <= metrics
    ece = a.comparison.set_index(["model", "precision", "metric"]).loc[
        ("mobilenetv2", "fp32", "test_ece")
    ]
    assert ece["diff"] == pytest.approx(-0.003)  # keras ECE is 0.001 x seed higher: mean 3 pp/10
    per_class = a.per_class[
        (a.per_class["model"] == "resnet50") & (a.per_class["precision"] == "fp32")
    ]
    assert per_class["diff"].tolist() == pytest.approx([0.02994, 0.02994])


@pytest.mark.slow
def test_diverged_seeds_per_arm_are_an_outcome_with_fishers_exact_test(verdict_runs):
    table = analyze(verdict_runs).divergence.set_index(["model", "precision"])
    # only cells with a diverged run; failed seeds are not counted as ended
    assert sorted(table.index) == [("mobilenetv2", "amp"), ("resnet50", "amp")]
    counts = ["arm_a", "diverged_a", "ended_a", "arm_b", "diverged_b", "ended_b"]
    assert table.loc[("mobilenetv2", "amp"), counts].tolist() == ["pytorch", 0, 5, "keras", 2, 4]
    assert table.loc[("resnet50", "amp"), counts].tolist() == ["pytorch", 0, 5, "keras", 1, 4]
    p_mob = stats.fisher_exact([[0, 5], [2, 2]]).pvalue  # 1/6: two of nine, both keras
    p_res = stats.fisher_exact([[0, 5], [1, 3]]).pvalue
    assert table["fisher_p"].tolist() == pytest.approx([p_mob, p_res], rel=1e-12)
    assert p_mob == pytest.approx(1 / 6)
    assert table["p_holm"].tolist() == pytest.approx(
        multipletests([p_mob, p_res], method="holm")[1].tolist()
    )
    view = divergence_display(analyze(verdict_runs).divergence)
    assert view.iloc[0].to_dict() == {
        "cell": "digits/mobilenetv2/amp", "arms (a - b)": "pytorch - keras", "diverged a": "0/5",
        "diverged b": "2/4", "Fisher p (Holm)": "0.167 (0.333)",
    }  # fmt: skip
    assert fisher_p(1, 5, 1, 5) != fisher_p(1, 5, 1, 5)  # the same rate: nothing to test


def _timed(overlap: bool) -> pd.DataFrame:
    """Five seeds, both arms, epoch times 5 % apart; runs one after another, or two at a time."""
    time = pd.Series([10.0, 10.4, 9.8, 10.1, 10.3], index=PT.index)
    runs = _runs({"pytorch": PT + 0.001 * PT.index, "keras": PT}, epoch_time_s={
        "pytorch": time * (1.2 + 0.001 * PT.index), "keras": time})  # fmt: skip
    order = runs["seed"] * 2 + (runs["framework"] == "keras")
    start = (order // 2 if overlap else order) * 100.0
    return runs.assign(host="node-1", started_at=start, finished_at=start + 90.0)


def test_speed_of_runs_that_shared_their_host_is_left_out_with_the_reason():
    alone = verdict_table(_timed(overlap=False), CFG).set_index("metric")
    assert alone.loc["epoch_time_s", "verdict"] == BEYOND  # +20 %: beyond +-5 %
    shared = verdict_table(_timed(overlap=True), CFG).set_index("metric")
    row = shared.loc["epoch_time_s"]
    assert row["verdict"] == NO_TEST and math.isnan(row["p_t"]) and math.isnan(row["ci_low"])
    assert row["verdict_text"] == (
        "timing not compared: 10 of 10 runs ran beside another run on their host (no test)"
    )
    assert row["diff"] == pytest.approx(alone.loc["epoch_time_s", "diff"])
    assert (shared["family_size"] == 1).all()  # accuracy alone is tested
    assert shared.loc["test_accuracy", "verdict"] != NO_TEST


def test_a_throughput_interval_never_reaches_below_zero():
    runs = _runs({"pytorch": PT, "keras": KE}).assign(images_per_second=[5.0, 400.0, 7.0] * 3 + [1])
    summary = analyze(runs).summary.set_index("framework")
    assert (summary["images_per_second_ci_low"] >= 0).all()
    assert summary["images_per_second_truncated"].any()
