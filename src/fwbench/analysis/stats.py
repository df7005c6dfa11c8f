"""Statistics across seeds (``fwbench analyze``): summaries, arm-pair verdicts, AMP effect.

Seeds are the replicate unit. Only finished runs (state ``done`` with test metrics) count;
every number comes from scipy, statsmodels or pingouin, never from a hand-written formula.
The arm comparisons (paired by seed, with equivalence verdicts) live in ``verdicts.py``.
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

from fwbench.analysis.attribution import primary_runs
from fwbench.analysis.diverged_seeds import divergence_table
from fwbench.analysis.per_class import per_class_table
from fwbench.analysis.replicates import CELL, STATES, finished, with_metric_columns
from fwbench.analysis.speed_rules import mixed_determinism
from fwbench.analysis.verdicts import holm, verdict_table
from fwbench.analysis.wording import format_value
from fwbench.config.analysis import AnalysisConfig, load_analysis_config
from fwbench.registry.metric_info import METRICS

AMP_GROUP = ["dataset", "model", "variant", "settings", "framework"]
INSUFFICIENT = "insufficient seeds"
CONSTANT = "constant samples"
TESTED = "tested"


@dataclass(frozen=True, repr=False)
class Analysis:
    """Every table ``fwbench analyze`` writes, and the settings that made them."""

    coverage: pd.DataFrame
    summary: pd.DataFrame
    comparison: pd.DataFrame
    amp: pd.DataFrame
    per_class: pd.DataFrame
    divergence: pd.DataFrame  # diverged seeds per arm and Fisher's exact test (divergence.py)
    config: AnalysisConfig

    def __repr__(self) -> str:
        """One line: the tables and their sizes (print a table itself to see it)."""
        tables = ("summary", "comparison", "coverage", "amp", "per_class")
        sizes = ", ".join(f"{t}: {len(getattr(self, t))} rows" for t in tables)
        return f"<Analysis {sizes}>"


def describe(
    values: np.ndarray | pd.Series,
    confidence: float = 0.95,
    bounds: tuple[float, float] | None = None,
) -> dict[str, float]:
    """n, mean, sd (ddof 1) and the t-based CI of the mean; sd and CI NaN when n < 2.

    With ``bounds`` (a bounded metric such as accuracy), the interval is truncated to them
    and ``truncated`` says so: an accuracy CI never reaches below 0 % or above 100 %.
    """
    x = np.asarray(pd.Series(values, dtype="float64").dropna())
    n = len(x)
    out = {"n": n, "mean": float(np.mean(x)) if n else np.nan}
    out |= {"sd": np.nan, "ci_low": np.nan, "ci_high": np.nan, "truncated": False}
    if n >= 2:
        out["sd"] = float(np.std(x, ddof=1))
        sem = float(stats.sem(x))
        if sem == 0:  # scipy returns NaN for a zero scale; the interval is the point itself
            out["ci_low"] = out["ci_high"] = out["mean"]
        else:
            low, high = stats.t.interval(confidence, df=n - 1, loc=out["mean"], scale=sem)
            out["ci_low"], out["ci_high"] = float(low), float(high)
        if bounds is not None:
            low, high = max(out["ci_low"], bounds[0]), min(out["ci_high"], bounds[1])
            out["truncated"] = (low, high) != (out["ci_low"], out["ci_high"])
            out["ci_low"], out["ci_high"] = low, high
    return out


def _diff_of_means(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(x, axis=axis) - np.mean(y, axis=axis)


def _ratio_of_means(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(x, axis=axis) / np.mean(y, axis=axis)


def bootstrap_ci(
    a: np.ndarray, b: np.ndarray, cfg: AnalysisConfig, statistic: Callable = _diff_of_means
) -> tuple[float, float, str]:
    """Unpaired bootstrap CI of ``statistic(a, b)`` (BCa; percentile where BCa is degenerate)."""
    for method in ("BCa", "percentile"):
        res = stats.bootstrap(
            (a, b),
            statistic,
            vectorized=True,
            paired=False,
            n_resamples=cfg.bootstrap_resamples,
            confidence_level=cfg.confidence,
            method=method,
            rng=np.random.default_rng(cfg.random_state),
        )
        low, high = res.confidence_interval
        if np.isfinite(low) and np.isfinite(high):
            return float(low), float(high), method
    return np.nan, np.nan, "none"


def compare_samples(
    a: np.ndarray, b: np.ndarray, names: tuple[str, str], cfg: AnalysisConfig
) -> dict:
    """Unpaired ``a - b``: bootstrap CI, Welch's t, Mann–Whitney U and Hedges' g (AMP effect).

    Fewer than ``cfg.min_seeds`` values in either sample: status ``insufficient seeds``, nothing
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
    if len(a) < cfg.min_seeds or len(b) < cfg.min_seeds:
        out["status"] = INSUFFICIENT
        out["note"] = (
            f"needs >= {cfg.min_seeds} finished seeds per arm; "
            f"{names[0]} n={len(a)}, {names[1]} n={len(b)}"
        )
        return out
    constant = np.ptp(a) == 0 and np.ptp(b) == 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out["ci_low"], out["ci_high"], out["ci_method"] = bootstrap_ci(a, b, cfg)
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


def coverage(runs: pd.DataFrame) -> pd.DataFrame:
    """Per stage, the number of runs in each state (all rows, nothing dropped)."""
    frame = runs.assign(stage=runs["stage"].fillna("(no stage)"))
    table = pd.crosstab(frame["stage"], frame["state"])
    states = [*STATES, *sorted(set(table.columns) - set(STATES))]
    table = table.reindex(columns=states, fill_value=0)
    table["total"] = table.sum(axis=1)
    return table.reset_index().rename_axis(columns=None)


def cell_summary(runs: pd.DataFrame, cfg: AnalysisConfig) -> pd.DataFrame:
    """Per (cell, framework): run states, then n, mean, sd, CI (bounded metrics truncated)."""
    rows = []
    done = finished(runs)
    for key, group in runs.groupby([*CELL, "framework"], sort=True, dropna=False):
        row = dict(zip([*CELL, "framework"], key, strict=True))
        states = group["state"].value_counts()
        row |= {f"n_{s}": int(states.get(s, 0)) for s in ("done", "failed", "diverged")}
        row["n_other"] = len(group) - sum(row[f"n_{s}"] for s in ("done", "failed", "diverged"))
        sel = done.loc[done.index.intersection(group.index)]
        row["n_seeds"] = len(sel)
        for metric, info in METRICS.items():
            for stat, value in describe(sel[metric], cfg.confidence, info.range).items():
                if stat != "n":
                    row[f"{metric}_{stat}"] = value
        rows.append(row)
    return pd.DataFrame(rows)


def amp_effect(runs: pd.DataFrame, cfg: AnalysisConfig) -> pd.DataFrame:
    """Per (dataset, model, variant, framework): speed-up fp32/amp and accuracy amp − fp32."""
    done = finished(runs)
    groups = runs[runs["precision"].isin(["fp32", "amp"])].groupby(AMP_GROUP, sort=True)
    mixed = mixed_determinism(runs, AMP_GROUP)  # fp32 and amp runs under different rules
    rows = []
    for key, group in groups:
        if set(group["precision"]) != {"fp32", "amp"}:
            continue
        sel = done.loc[done.index.intersection(group.index)]
        fp32, amp = (sel[sel["precision"] == p] for p in ("fp32", "amp"))
        row = dict(zip(AMP_GROUP, key, strict=True)) | {"metric": "test_accuracy"}
        row |= compare_samples(amp["test_accuracy"], fp32["test_accuracy"], ("amp", "fp32"), cfg)
        t32, tamp = fp32["epoch_time_s"].dropna(), amp["epoch_time_s"].dropna()
        row["epoch_time_fp32"] = float(t32.mean()) if len(t32) else np.nan
        row["epoch_time_amp"] = float(tamp.mean()) if len(tamp) else np.nan
        row["speedup"] = row["epoch_time_fp32"] / row["epoch_time_amp"]
        row["speedup_ci_low"] = row["speedup_ci_high"] = np.nan
        if key in mixed:
            row["speedup"] = np.nan
        elif len(t32) >= cfg.min_seeds and len(tamp) >= cfg.min_seeds:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                low, high, _ = bootstrap_ci(t32.to_numpy(), tamp.to_numpy(), cfg, _ratio_of_means)
            row["speedup_ci_low"], row["speedup_ci_high"] = low, high
        rows.append(row)
    table = pd.DataFrame(rows).rename(
        columns={"n_a": "n_amp", "n_b": "n_fp32", "mean_a": "acc_amp", "mean_b": "acc_fp32"}
    )
    table = table.rename(columns={"diff": "acc_change"})
    if table.empty:
        return table
    table["p_holm"] = holm(table["welch_p"], cfg.alpha)
    table["significant"] = (table["p_holm"] < cfg.alpha).where(table["p_holm"].notna())
    table["conclusion"] = [amp_conclusion(row, cfg) for row in table.to_dict("records")]
    return table


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


def amp_conclusion(row: dict, cfg: AnalysisConfig) -> str:
    """One sentence on AMP − FP32 test accuracy: only what the Holm-corrected test supports."""
    if row["status"] == INSUFFICIENT:
        return f"not tested: {INSUFFICIENT} ({row['note']})"
    ci = (
        f"{cfg.confidence:.0%} bootstrap CI [{format_value('test_accuracy', row['ci_low'], True)}, "
        f"{format_value('test_accuracy', row['ci_high'], True)}]"
    )
    change = format_value("test_accuracy", row["acc_change"], True)
    head = f"AMP − FP32 test accuracy = {change} ({ci})"
    if row["status"] == CONSTANT:
        return f"{head}; not tested by Welch's t: {row['note']}"
    g = row["hedges_g"]
    effect = f"Hedges' g = {g:.2f} ({effect_label(g)})"
    ps = f"p_holm = {row['p_holm']:.3g}, Welch p = {row['welch_p']:.3g}, "
    ps += f"Mann–Whitney p = {row['mwu_p']:.3g}"
    if row["significant"]:
        return f"{head}; significant after Holm correction ({ps}); {effect}"
    return f"{head}; no significant difference after Holm correction ({ps}); {effect}"


def analyze(runs: pd.DataFrame, cfg: AnalysisConfig | None = None) -> Analysis:
    """Every analysis table from the collected runs table (package-default settings if none)."""
    cfg = cfg or load_analysis_config()
    runs = primary_runs(with_metric_columns(runs))  # attribution-only arms left out
    return Analysis(
        coverage=coverage(runs),
        summary=cell_summary(runs, cfg),
        comparison=verdict_table(runs, cfg),
        amp=amp_effect(runs, cfg),
        per_class=per_class_table(runs, cfg),
        divergence=divergence_table(runs, cfg.alpha, cfg.reference),
        config=cfg,
    )
