"""Analysis tables for reading: display formatting and CSV / Markdown files.

CSV keeps every column at full precision (for further work); Markdown carries the formatted
view a reader needs; ``latex.py`` writes the numeric LaTeX tables a paper needs.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from fwbench.analysis.diverged_seeds import divergence_display
from fwbench.analysis.latex import write_latex_tables
from fwbench.analysis.paired import TESTED
from fwbench.analysis.power import family_alpha
from fwbench.analysis.replicates import CELL, cell_name
from fwbench.analysis.stats import Analysis
from fwbench.analysis.verdicts import DECIDED
from fwbench.analysis.wording import (
    PLUS_MINUS,
    format_ci,
    format_diff,
    format_level,
    format_margin,
    format_p,
    format_value,
)
from fwbench.core.fileio import atomic_write, write_text
from fwbench.core.paths import Workspace
from fwbench.registry.metric_info import METRICS

TABLES = ("coverage", "summary", "comparison", "amp", "per_class", "divergence")
TRUNCATED = "†"
PRIMARY = "test_accuracy"
SPEED = "epoch_time_s"


def _ci(metric: str, low: float, high: float, truncated: bool = False) -> str:
    if not (math.isfinite(low) and math.isfinite(high)):
        return "n/a"
    mark = TRUNCATED if truncated else ""
    return f"[{format_value(metric, low)}, {format_value(metric, high)}]{mark}"


def _mean_sd(metric: str, mean: float, sd: float) -> str:
    if not math.isfinite(mean):
        return "n/a"
    if not math.isfinite(sd):
        return format_value(metric, mean)
    if METRICS[metric].unit == "fraction":
        return f"{mean * 100:.2f} {PLUS_MINUS} {sd * 100:.2f} %"
    return f"{format_value(metric, mean)} {PLUS_MINUS} {sd:.2f}"


def summary_display(summary: pd.DataFrame) -> pd.DataFrame:
    """Per cell and framework: seeds and ``mean ± sd [CI]`` of each metric (``†``: truncated)."""
    if summary.empty:
        return summary
    out = summary[[*CELL, "framework"]].copy()
    out["seeds done/failed/diverged/other"] = [
        f"{r.n_done}/{r.n_failed}/{r.n_diverged}/{r.n_other}" for r in summary.itertuples()
    ]
    for metric, info in METRICS.items():
        if summary[f"{metric}_mean"].isna().all():
            continue
        cols = [summary[f"{metric}_{s}"] for s in ("mean", "sd", "ci_low", "ci_high", "truncated")]
        out[info.label] = [
            f"{_mean_sd(metric, m, sd)} {_ci(metric, lo, hi, bool(t))}".replace(" n/a", "")
            for m, sd, lo, hi, t in zip(*cols, strict=True)
        ]
    return out


def _pairs(r: dict) -> str:
    excluded = [f"{r[f'arm_{s}']}: {r[f'excluded_{s}']}" for s in "ab" if r[f"n_excluded_{s}"]]
    return f"{r['n_pairs']}" + (f" (excluded {'; '.join(excluded)})" if excluded else "")


def diff_with_ci(r: dict, analysis: Analysis) -> str:
    """A comparison row's difference with the interval its verdict read (tested rows only)."""
    margin = analysis.config.margins[r["metric"]]
    diff = format_diff(r["metric"], r["diff"], margin)
    if r["status"] != TESTED:
        return diff
    return f"{diff} {format_ci(r['metric'], r['ci_low'], r['ci_high'], margin)}"


def interval_text(r: dict) -> str:
    """How a row's interval was drawn: ``t, 99.6 %``, ``BCa, 99.6 %`` or n/a."""
    if r["status"] != TESTED:
        return "n/a"
    return f"{r['ci_method']}, {format_level(r['ci_level'])}"


def verdict_display(analysis: Analysis) -> pd.DataFrame:
    """The first screen: per cell and arm pair, the test-accuracy and epoch-time verdicts."""
    comp = analysis.comparison
    if comp.empty:
        return comp
    rows = []
    for _, group in comp.groupby([*CELL, "comparison"], sort=False):
        by_metric = {r["metric"]: r for r in group.to_dict("records")}
        head = by_metric[PRIMARY]
        row = {"cell": cell_name(head), "arms": head["comparison"], "seed pairs": _pairs(head)}
        row["test accuracy: verdict"] = head["verdict_text"]
        row["test accuracy: a − b [adjusted CI]"] = diff_with_ci(head, analysis)
        speed = by_metric.get(SPEED)
        row["epoch time: verdict"] = speed["verdict_text"] if speed else "not measured"
        row["epoch time: a / b − 1 [adjusted CI]"] = (
            diff_with_ci(speed, analysis) if speed else "n/a"
        )
        rows.append(row)
    return pd.DataFrame(rows)


def comparison_display(analysis: Analysis) -> pd.DataFrame:
    """Every cell, arm pair and metric: verdict, paired statistics (primary), unpaired beside."""
    comp = analysis.comparison
    if comp.empty:
        return comp
    rows = []
    for r in comp.to_dict("records"):
        m = r["metric"]
        margin = analysis.config.margins[m]
        rows.append(
            {
                "cell": cell_name(r),
                "arms": r["comparison"],
                "metric": METRICS[m].label,
                "verdict": r["verdict_text"],
                "seed pairs": _pairs(r),
                "mean a / b": f"{format_value(m, r['mean_a'])} / {format_value(m, r['mean_b'])}",
                "a − b [CI]": diff_with_ci(r, analysis),
                "CI (method, level)": interval_text(r),
                "margin": format_margin(m, margin),
                "paired t p (Holm)": f"{format_p(r['p_t'])} ({format_p(r['p_t_holm'])})",
                "TOST p (alone)": format_p(r["p_tost"]),
                "Wilcoxon p": format_p(r["p_w"]),
                "Welch p": format_p(r["p_welch"]),
                "Mann–Whitney p": format_p(r["p_mwu"]),
                "between-arm r": "n/a" if not math.isfinite(r["corr"]) else f"{r['corr']:.2f}",
                "Hedges' g": "n/a" if not math.isfinite(r["hedges_g"]) else f"{r['hedges_g']:.2f}",
                "why tests disagree": r["why"] if isinstance(r["why"], str) else "",
            }
        )
    return pd.DataFrame(rows)


NO_VARIATION = "cannot estimate (no variation)"


def seeds_text(value: float, sd: float = math.nan) -> str:
    """A seeds-needed figure: an integer, ``> 100000``, no variation (sd 0) or n/a."""
    if sd == 0:
        return NO_VARIATION
    if not isinstance(value, int | float) or math.isnan(value):
        return "n/a"
    return "> 100000" if math.isinf(value) else str(int(value))


def seeds_cell(r: dict, key: str) -> str:
    """Seeds needed for one row: ``decided with n`` once its verdict is decided, else the
    figure, flagged when it is reached without a decision (the difference lies near ±δ)."""
    if r["verdict"] in DECIDED:
        return f"decided with {r['n_pairs']}"
    text = seeds_text(r[key], r["sd_diff"])
    reached = r["status"] == TESTED and r[key] <= r["n_pairs"]
    return f"{text}: reached, undecided (difference near the margin)" if reached else text


def family_text(analysis: Analysis) -> str:
    """``α/m = 0.05/12 = 0.00417 (Bonferroni, Holm's strictest step)`` for the seeds tables."""
    cfg, comp = analysis.config, analysis.comparison
    family = int((comp["status"] == TESTED).sum()) if not comp.empty else 0
    level = family_alpha(cfg.alpha, family)
    return f"α/m = {cfg.alpha}/{max(family, 1)} = {level:.3g}"


def seeds_display(analysis: Analysis) -> pd.DataFrame:
    """Per cell, arm pair and metric: paired sd and the seeds that decide the margin."""
    comp = analysis.comparison
    if comp.empty:
        return comp
    cfg = analysis.config
    rows = []
    for r in comp.to_dict("records"):
        m, margin = r["metric"], cfg.margins[r["metric"]]
        sd = r["sd_diff"]
        sd_text = "n/a" if not math.isfinite(sd) else (
            f"{sd * 100:.2f} %" if margin.scale == "relative" or METRICS[m].unit == "fraction"
            else f"{sd:.3g}"
        )  # fmt: skip
        rows.append(
            {
                "cell": cell_name(r),
                "arms": r["comparison"],
                "metric": METRICS[m].label,
                "seed pairs now": r["n_pairs"],
                "sd of paired differences": sd_text,
                "margin": format_margin(m, margin),
                f"seeds to show equivalence ({cfg.power:.0%} power)": seeds_cell(
                    r, "seeds_equivalence"
                ),
                f"seeds to detect a margin-sized difference ({cfg.power:.0%})": seeds_cell(
                    r, "seeds_difference"
                ),
                "verdict now": r["verdict_text"],
            }
        )
    return pd.DataFrame(rows)


def per_class_display(analysis: Analysis) -> pd.DataFrame:
    """Per cell and arm pair: the worst class of each arm and the largest per-class difference."""
    table = analysis.per_class
    if table.empty:
        return table
    margin = analysis.config.margins[PRIMARY].value
    rows = []
    for _, g in table.groupby([*CELL, "comparison"], sort=False):
        first = g.iloc[0]
        worst_a, worst_b = g.loc[g["mean_a"].idxmin()], g.loc[g["mean_b"].idxmin()]
        largest = g.loc[g["diff"].abs().idxmax()]
        outside = g[(g["ci_low"] > margin) | (g["ci_high"] < -margin)]
        rows.append(
            {
                "cell": cell_name(first),
                "arms": first["comparison"],
                "classes": len(g),
                "seed pairs": int(first["n_pairs"]),
                "worst class a": f"{int(worst_a['class'])}: {worst_a['mean_a'] * 100:.1f} %",
                "worst class b": f"{int(worst_b['class'])}: {worst_b['mean_b'] * 100:.1f} %",
                "largest class difference a − b": f"class {int(largest['class'])}: "
                f"{largest['diff'] * 100:+.1f} pp",
                "classes whose CI lies beyond the accuracy margin": len(outside),
            }
        )
    return pd.DataFrame(rows)


def amp_display(amp: pd.DataFrame) -> pd.DataFrame:
    """Per framework and (dataset, model): speed-up fp32/amp and accuracy change amp − fp32."""
    if amp.empty:
        return amp
    rows = []
    for r in amp.to_dict("records"):
        speedup = "n/a" if not math.isfinite(r["speedup"]) else f"{r['speedup']:.2f}×"
        ci = (
            f"[{r['speedup_ci_low']:.2f}, {r['speedup_ci_high']:.2f}]"
            if math.isfinite(r["speedup_ci_low"])
            else "n/a"
        )
        acc_ci = "n/a"
        if math.isfinite(r["ci_low"]):
            low, high = (
                format_value("test_accuracy", r[k], signed=True) for k in ("ci_low", "ci_high")
            )
            acc_ci = f"[{low}, {high}]"
        rows.append(
            {k: r[k] for k in ("dataset", "model", "variant", "framework")}
            | {
                "n (fp32/amp)": f"{r['n_fp32']}/{r['n_amp']}",
                "speed-up (fp32/amp epoch time)": speedup,
                "speed-up CI": ci,
                "accuracy fp32": format_value("test_accuracy", r["acc_fp32"]),
                "accuracy amp": format_value("test_accuracy", r["acc_amp"]),
                "accuracy change": format_value("test_accuracy", r["acc_change"], signed=True),
                "bootstrap CI": acc_ci,
                "p_holm": format_p(r["p_holm"]),
                "outcome": r["status"]
                if r["status"] != "tested"
                else ("significant" if r["significant"] else "not significant"),
            }
        )
    return pd.DataFrame(rows)


def displays(analysis: Analysis) -> dict[str, pd.DataFrame]:
    """The reader's view of every analysis table, by name."""
    return {
        "coverage": analysis.coverage,
        "verdicts": verdict_display(analysis),
        "summary": summary_display(analysis.summary),
        "comparison": comparison_display(analysis),
        "seeds": seeds_display(analysis),
        "per_class": per_class_display(analysis),
        "amp": amp_display(analysis.amp),
        "divergence": divergence_display(analysis.divergence),
    }


def to_markdown(frame: pd.DataFrame, empty: str = "_(no rows)_") -> str:
    """A GitHub-style Markdown table, or ``empty`` for a table without rows."""
    return empty if frame.empty else frame.to_markdown(index=False)


def write_analysis(ws: Workspace, analysis: Analysis, scope: str = "") -> list[Path]:
    """Write ``analysis/<table>.csv`` (full precision), ``.md`` (formatted) and ``.tex``; each
    ``.md`` opens with ``scope`` (which runs it covers) when one is given."""
    out = ws.analysis_dir
    written = []
    for name in TABLES:
        raw: pd.DataFrame = getattr(analysis, name)
        written.append(atomic_write(out / f"{name}.csv", lambda p, f=raw: f.to_csv(p, index=False)))
    lead = f"_{scope}_\n\n" if scope else ""
    for name, view in displays(analysis).items():
        written.append(write_text(out / f"{name}.md", lead + to_markdown(view) + "\n"))
    return written + write_latex_tables(out, analysis)
