"""Statistics across seeds (``fwbench analyze``): summaries, PyTorch vs Keras tests, AMP effect.

Seeds are the replicate unit. Only finished runs (state ``done`` with test metrics) count;
every number comes from scipy, statsmodels or pingouin, never from a hand-written formula.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pingouin as pg
from scipy import stats
from statsmodels.stats.multitest import multipletests

CELL = ["dataset", "model", "precision", "variant"]
AMP_GROUP = ["dataset", "model", "variant", "framework"]
METRICS = {
    "test_accuracy": "test accuracy",
    "test_macro_f1": "test macro-F1",
    "epoch_time_s": "epoch time (s)",
    "images_per_second": "throughput (images/s)",
}
ALPHA = 0.05
CONFIDENCE = 0.95
MIN_SEEDS = 2
N_RESAMPLES = 9999
RANDOM_STATE = 0
INSUFFICIENT = "insufficient seeds"
CONSTANT = "constant samples"
TESTED = "tested"
ARMS = ("pytorch", "keras")


@dataclass(frozen=True)
class Analysis:
    """Every table ``fwbench analyze`` writes."""

    coverage: pd.DataFrame
    summary: pd.DataFrame
    comparison: pd.DataFrame
    amp: pd.DataFrame


def finished(runs: pd.DataFrame) -> pd.DataFrame:
    """Runs that count as replicates: state ``done`` with a test accuracy."""
    return runs[(runs["state"] == "done") & runs["test_accuracy"].notna()]


def describe(values: np.ndarray | pd.Series) -> dict[str, float]:
    """n, mean, sd (ddof 1) and the t-based 95% CI of the mean; sd and CI NaN when n < 2."""
    x = np.asarray(pd.Series(values, dtype="float64").dropna())
    n = len(x)
    out = {"n": n, "mean": float(np.mean(x)) if n else np.nan}
    out |= {"sd": np.nan, "ci_low": np.nan, "ci_high": np.nan}
    if n >= 2:
        out["sd"] = float(np.std(x, ddof=1))
        sem = float(stats.sem(x))
        if sem == 0:  # scipy returns NaN for a zero scale; the interval is the point itself
            out["ci_low"] = out["ci_high"] = out["mean"]
        else:
            low, high = stats.t.interval(CONFIDENCE, df=n - 1, loc=out["mean"], scale=sem)
            out["ci_low"], out["ci_high"] = float(low), float(high)
    return out


def _diff_of_means(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(x, axis=axis) - np.mean(y, axis=axis)


def _ratio_of_means(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(x, axis=axis) / np.mean(y, axis=axis)


def bootstrap_ci(
    a: np.ndarray, b: np.ndarray, statistic: Callable = _diff_of_means
) -> tuple[float, float, str]:
    """95% bootstrap CI of ``statistic(a, b)`` (BCa; percentile where BCa is degenerate)."""
    for method in ("BCa", "percentile"):
        res = stats.bootstrap(
            (a, b),
            statistic,
            vectorized=True,
            paired=False,
            n_resamples=N_RESAMPLES,
            confidence_level=CONFIDENCE,
            method=method,
            rng=np.random.default_rng(RANDOM_STATE),
        )
        low, high = res.confidence_interval
        if np.isfinite(low) and np.isfinite(high):
            return float(low), float(high), method
    return np.nan, np.nan, "none"


def compare_samples(a: np.ndarray, b: np.ndarray, names: tuple[str, str] = ARMS) -> dict:
    """Difference of means ``a - b`` with bootstrap CI, Welch's t, Mann–Whitney U and Hedges' g.

    Fewer than ``MIN_SEEDS`` values in either sample: status ``insufficient seeds``, nothing
    tested. Zero variance in both samples: Welch's t and Hedges' g are undefined (NaN, noted).
    """
    a = np.asarray(pd.Series(a, dtype="float64").dropna())
    b = np.asarray(pd.Series(b, dtype="float64").dropna())
    out = {
        "n_a": len(a),
        "n_b": len(b),
        "mean_a": float(np.mean(a)) if len(a) else np.nan,
        "mean_b": float(np.mean(b)) if len(b) else np.nan,
    }
    out["diff"] = out["mean_a"] - out["mean_b"]
    nan_fields = ("ci_low", "ci_high", "welch_t", "welch_p", "mwu_u", "mwu_p", "hedges_g")
    out |= dict.fromkeys(nan_fields, np.nan) | {"ci_method": None, "note": None}
    if len(a) < MIN_SEEDS or len(b) < MIN_SEEDS:
        out["status"] = INSUFFICIENT
        out["note"] = (
            f"needs >= {MIN_SEEDS} finished seeds per arm; "
            f"{names[0]} n={len(a)}, {names[1]} n={len(b)}"
        )
        return out
    constant = np.ptp(a) == 0 and np.ptp(b) == 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out["ci_low"], out["ci_high"], out["ci_method"] = bootstrap_ci(a, b)
        mwu = stats.mannwhitneyu(a, b, alternative="two-sided")
        out["mwu_u"], out["mwu_p"] = float(mwu.statistic), float(mwu.pvalue)
        if constant:
            out["status"] = CONSTANT
            out["note"] = "zero variance in both arms: Welch's t and Hedges' g undefined"
            return out
        welch = stats.ttest_ind(a, b, equal_var=False)
        out["welch_t"], out["welch_p"] = float(welch.statistic), float(welch.pvalue)
        out["hedges_g"] = float(pg.compute_effsize(a, b, paired=False, eftype="hedges"))
    out["status"] = TESTED
    return out


def holm(pvalues: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Holm-adjusted p-values and reject flags (alpha 0.05); NaN p-values stay NaN, not counted."""
    adjusted = pd.Series(np.nan, index=pvalues.index, dtype="float64")
    reject = pd.Series(pd.NA, index=pvalues.index, dtype="boolean")
    valid = pvalues.dropna()
    if len(valid):
        rej, p_adj, _, _ = multipletests(valid.to_numpy(), alpha=ALPHA, method="holm")
        adjusted[valid.index] = p_adj
        reject[valid.index] = rej
    return adjusted, reject


def coverage(runs: pd.DataFrame) -> pd.DataFrame:
    """Per stage, the number of runs in each state (all rows, nothing dropped)."""
    states = ["done", "running", "interrupted", "failed", "diverged", "pending"]
    frame = runs.assign(stage=runs["stage"].fillna("(no stage)"))
    table = pd.crosstab(frame["stage"], frame["state"]).reindex(columns=states, fill_value=0)
    table["total"] = table.sum(axis=1)
    return table.reset_index().rename_axis(columns=None)


def cell_summary(runs: pd.DataFrame) -> pd.DataFrame:
    """Per (cell, framework): run states, then n, mean, sd, 95% CI of every metric."""
    rows = []
    done = finished(runs)
    for key, group in runs.groupby([*CELL, "framework"], sort=True, dropna=False):
        row = dict(zip([*CELL, "framework"], key, strict=True))
        states = group["state"].value_counts()
        row |= {f"n_{s}": int(states.get(s, 0)) for s in ("done", "failed", "diverged")}
        row["n_other"] = len(group) - sum(row[f"n_{s}"] for s in ("done", "failed", "diverged"))
        sel = done.loc[done.index.intersection(group.index)]
        row["n_seeds"] = len(sel)
        for metric in METRICS:
            for stat, value in describe(sel[metric]).items():
                if stat != "n":
                    row[f"{metric}_{stat}"] = value
        rows.append(row)
    return pd.DataFrame(rows)


def framework_comparison(runs: pd.DataFrame) -> pd.DataFrame:
    """Per (cell, metric): PyTorch − Keras with CI, tests, Hedges' g, Holm across cells."""
    done = finished(runs)
    rows = []
    for key, group in runs.groupby(CELL, sort=True, dropna=False):
        sel = done.loc[done.index.intersection(group.index)]
        for metric in METRICS:
            arms = [sel.loc[sel["framework"] == f, metric] for f in ARMS]
            result = compare_samples(*arms)
            rows.append(dict(zip(CELL, key, strict=True)) | {"metric": metric} | result)
    table = pd.DataFrame(rows).rename(
        columns={"n_a": "n_pytorch", "n_b": "n_keras", "mean_a": "mean_pytorch"}
    )
    table = table.rename(columns={"mean_b": "mean_keras"})
    return _add_holm(table, "metric")


def _add_holm(table: pd.DataFrame, family: str) -> pd.DataFrame:
    if table.empty:
        return table
    table = table.copy()
    for name in ("p_holm", "mwu_p_holm"):
        table[name] = np.nan
    table["significant"] = pd.Series(pd.NA, index=table.index, dtype="boolean")
    for _, fam in table.groupby(family, sort=False):
        table.loc[fam.index, "p_holm"], table.loc[fam.index, "significant"] = holm(fam["welch_p"])
        table.loc[fam.index, "mwu_p_holm"] = holm(fam["mwu_p"])[0]
    table["conclusion"] = [conclusion(row) for row in table.to_dict("records")]
    return table


def amp_effect(runs: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset, model, variant, framework): speed-up fp32/amp and accuracy amp − fp32."""
    done = finished(runs)
    groups = runs[runs["precision"].isin(["fp32", "amp"])].groupby(AMP_GROUP, sort=True)
    rows = []
    for key, group in groups:
        if set(group["precision"]) != {"fp32", "amp"}:
            continue
        sel = done.loc[done.index.intersection(group.index)]
        fp32, amp = (sel[sel["precision"] == p] for p in ("fp32", "amp"))
        row = dict(zip(AMP_GROUP, key, strict=True)) | {"metric": "test_accuracy"}
        row |= compare_samples(amp["test_accuracy"], fp32["test_accuracy"], ("amp", "fp32"))
        t32, tamp = fp32["epoch_time_s"].dropna(), amp["epoch_time_s"].dropna()
        row["epoch_time_fp32"] = float(t32.mean()) if len(t32) else np.nan
        row["epoch_time_amp"] = float(tamp.mean()) if len(tamp) else np.nan
        row["speedup"] = row["epoch_time_fp32"] / row["epoch_time_amp"]
        row["speedup_ci_low"] = row["speedup_ci_high"] = np.nan
        if len(t32) >= MIN_SEEDS and len(tamp) >= MIN_SEEDS:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                low, high, _ = bootstrap_ci(t32.to_numpy(), tamp.to_numpy(), _ratio_of_means)
            row["speedup_ci_low"], row["speedup_ci_high"] = low, high
        rows.append(row)
    table = pd.DataFrame(rows).rename(
        columns={"n_a": "n_amp", "n_b": "n_fp32", "mean_a": "acc_amp", "mean_b": "acc_fp32"}
    )
    return _add_holm(table.rename(columns={"diff": "acc_change"}), "metric")


def effect_label(g: float) -> str:
    """Cohen's conventional size of a standardized effect: negligible/small/medium/large."""
    if not math.isfinite(g):
        return "undefined"
    size = abs(g)
    return (
        "negligible"
        if size < 0.2
        else "small"
        if size < 0.5
        else "medium"
        if size < 0.8
        else "large"
    )


def format_value(metric: str, value: float, signed: bool = False) -> str:
    """A metric value in its reading unit: accuracies in % (pp for differences), time in s."""
    if value is None or not math.isfinite(value):
        return "n/a"
    sign = "+" if signed else ""
    if metric in ("test_accuracy", "test_macro_f1"):
        return f"{value * 100:{sign}.2f} {'pp' if signed else '%'}"
    if metric == "epoch_time_s":
        return f"{value:{sign}.2f} s"
    return f"{value:{sign}.1f} img/s"


def conclusion(row: dict) -> str:
    """One sentence that says only what the Holm-corrected test supports, with the effect size."""
    metric = row["metric"]
    if row["status"] == INSUFFICIENT:
        return f"not tested: {INSUFFICIENT} ({row['note']})"
    diff = "acc_change" if "acc_change" in row else "diff"
    what = "AMP − FP32" if diff == "acc_change" else "PyTorch − Keras"
    ci = (
        f"95% bootstrap CI [{format_value(metric, row['ci_low'], True)}, "
        f"{format_value(metric, row['ci_high'], True)}]"
    )
    head = f"{what} {METRICS[metric]} = {format_value(metric, row[diff], True)} ({ci})"
    if row["status"] == CONSTANT:
        return f"{head}; not tested by Welch's t: {row['note']}"
    g = row["hedges_g"]
    effect = f"Hedges' g = {g:.2f} ({effect_label(g)})"
    ps = f"p_holm = {row['p_holm']:.3g}, Welch p = {row['welch_p']:.3g}, "
    ps += f"Mann–Whitney p = {row['mwu_p']:.3g}"
    if row["significant"]:
        return f"{head}; significant after Holm correction ({ps}); {effect}"
    return f"{head}; no significant difference after Holm correction ({ps}); {effect}"


def analyze(runs: pd.DataFrame) -> Analysis:
    """Every analysis table from the collected runs table."""
    return Analysis(
        coverage=coverage(runs),
        summary=cell_summary(runs),
        comparison=framework_comparison(runs),
        amp=amp_effect(runs),
    )
