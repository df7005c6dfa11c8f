"""LaTeX tables for a paper: numeric columns, booktabs rules, ASCII only, caption and label.

Each table is a float (``\\caption``, ``\\label{tab:fwbench-...}``) around a booktabs
``tabularx`` as wide as the text, in ``\\small``: text columns (cell, verdict) wrap, so a table
fits an article page; all but coverage are ``sidewaystable`` floats
(landscape). Fractions are in % (differences in pp), relative differences in %. A document needs
``\\usepackage{booktabs,tabularx,rotating}`` and ``\\input{analysis/<name>.tex}``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

from fwbench.analysis.replicates import CELL, cell_name
from fwbench.analysis.stats import Analysis
from fwbench.core.fileio import write_text
from fwbench.registry.metric_info import METRICS

PACKAGES = ("booktabs", "tabularx", "rotating")
WRAP = r">{\raggedright\arraybackslash}X"  # a text column that wraps within the text width
TEXT_COLUMNS = ("Cell", "Arms", "Arm", "Metric", "Verdict")
SHORT = {  # column headers: the metric in a word
    "test_accuracy": "Top-1", "test_top5_accuracy": "Top-5", "test_macro_f1": "Macro-F1",
    "test_ece": "ECE", "epoch_time_s": "Epoch", "images_per_second": "Throughput",
}  # fmt: skip
LANDSCAPE = ("summary", "comparison", "seeds", "amp")
ASCII = {"−": "-", "–": "-", "±": "+-", "×": "x", "α": "alpha", "δ": "delta", "†": "*"}


def _ascii(text: str) -> str:
    for char, plain in ASCII.items():
        text = text.replace(char, plain)
    if not text.isascii():
        raise ValueError(f"non-ASCII text in a LaTeX table: {text!r}")
    return text


def _cell(frame: pd.DataFrame) -> pd.Series:
    return frame[CELL].apply(lambda r: cell_name(r.to_dict()), axis=1)


def _scale(metric: str, relative: bool) -> tuple[float, str]:
    """Factor and unit of a difference in ``metric``: pp for fractions, % for ratios."""
    if relative:
        return 100.0, "%"
    return (100.0, "pp") if METRICS[metric].unit == "fraction" else (1.0, "s")


def _mean_sd(mean: pd.Series, sd: pd.Series, factor: float) -> list[str]:
    """``91.83 (0.65)``: a mean with its sd in brackets, ``--`` where there is no mean."""
    return [
        "--" if pd.isna(m) else f"{m * factor:.2f}" + ("" if pd.isna(d) else f" ({d * factor:.2f})")
        for m, d in zip(mean, sd, strict=True)
    ]


def summary_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Per cell and arm: seeds, then ``mean (sd)`` of each metric (fractions in %)."""
    out = pd.DataFrame({"Cell": _cell(summary), "Arm": summary["framework"]})
    out["Seeds"] = summary["n_seeds"].astype(int)
    for metric, info in METRICS.items():
        if summary[f"{metric}_mean"].isna().all():
            continue
        factor = 100.0 if info.unit == "fraction" else 1.0
        unit = {"fraction": "%", "seconds": "s", "rate": "img/s"}[info.unit]
        out[f"{SHORT[metric]} ({unit})"] = _mean_sd(
            summary[f"{metric}_mean"], summary[f"{metric}_sd"], factor
        )
    return out


def comparison_table(comparison: pd.DataFrame) -> pd.DataFrame:
    """Per cell, arm pair and metric: pairs, difference, CI, Holm p-values, verdict."""
    rows = []
    for r in comparison.to_dict("records"):
        factor, unit = _scale(r["metric"], r["margin_scale"] == "relative")
        rows.append(
            {
                "Cell": cell_name(r),
                "Arms": r["comparison"],
                "Metric": f"{SHORT[r['metric']]} ({unit})",
                "Pairs": r["n_pairs"],
                "Diff.": r["diff"] * factor,
                "CI low": r["ci_low"] * factor,
                "CI high": r["ci_high"] * factor,
                "Margin": r["margin"] * factor,
                "Level (%)": r["ci_level"] * 100,
                "p t (Holm)": r["p_t_holm"],
                "Verdict": r["verdict"],
            }
        )
    return pd.DataFrame(rows)


def seeds_table(comparison: pd.DataFrame) -> pd.DataFrame:
    """Per cell, arm pair and metric: sd of the paired differences and the seeds needed."""
    table = comparison_table(comparison)[["Cell", "Arms", "Metric", "Pairs", "Margin"]]
    factors = [
        _scale(m, s == "relative")[0]
        for m, s in zip(comparison["metric"], comparison["margin_scale"], strict=True)
    ]
    table.insert(4, "sd diff.", comparison["sd_diff"].to_numpy() * factors)
    table["Seeds equiv."] = comparison["seeds_equivalence"].to_numpy()
    table["Seeds diff."] = comparison["seeds_difference"].to_numpy()
    return table


def amp_table(amp: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset, model, variant, arm): AMP speed-up and accuracy change with CIs."""
    return pd.DataFrame(
        {
            "Cell": amp["dataset"] + "/" + amp["model"],
            "Arm": amp["framework"],
            "n fp32": amp["n_fp32"],
            "n amp": amp["n_amp"],
            "Speed-up": amp["speedup"],
            "CI low": amp["speedup_ci_low"],
            "CI high": amp["speedup_ci_high"],
            "Acc. change (pp)": amp["acc_change"] * 100,
            "Acc. CI low": amp["ci_low"] * 100,
            "Acc. CI high": amp["ci_high"] * 100,
            "p (Holm)": amp["p_holm"],
        }
    )


def _p(value: float) -> str:
    return "--" if pd.isna(value) else f"{value:.3g}"


def _column_format(frame: pd.DataFrame) -> str:
    """Wrapping text columns, left-aligned other text, right-aligned numbers."""
    kinds = []
    for name in frame.columns:
        numeric = pd.api.types.is_numeric_dtype(frame[name])
        kinds.append(WRAP if name in TEXT_COLUMNS else "r" if numeric else "l")
    if WRAP not in kinds:  # tabularx needs one X column: the first text column wraps
        first = next((i for i, k in enumerate(kinds) if k == "l"), 0)
        kinds[first] = WRAP
    return "".join(kinds)


def to_latex(frame: pd.DataFrame, caption: str, label: str, landscape: bool = False) -> str:
    """One booktabs table float as wide as the text, ASCII only; p-values in 3 digits."""
    if frame.empty:
        return f"% {label}: no rows\n"
    formatters: dict[str, Callable] = {c: _p for c in frame.columns if c.startswith("p ")}
    text = frame.to_latex(
        index=False,
        escape=True,
        na_rep="--",
        float_format="%.2f",
        formatters=formatters,
        column_format="@{}" + _column_format(frame) + "@{}",
        caption=_ascii(caption),
        label=f"tab:fwbench-{label}",
        position="htbp",
    )
    float_name = "sidewaystable" if landscape else "table"
    text = text.replace(
        "\\begin{table}[htbp]",
        f"\\begin{{{float_name}}}[htbp]\n\\centering\n\\small\n\\setlength{{\\tabcolsep}}{{4pt}}",
    )
    text = text.replace("\\end{table}", f"\\end{{{float_name}}}")
    head, rule, body = text.partition("\\midrule")
    text = head + rule + body.replace("/", "/\\allowbreak{}")  # cell names break at a slash
    text = text.replace("\\begin{tabular}", "\\begin{tabularx}{\\linewidth}")
    return _ascii(text.replace("\\end{tabular}", "\\end{tabularx}"))


def write_latex_tables(out: Path, analysis: Analysis) -> list[Path]:
    """Write ``coverage``, ``summary``, ``comparison``, ``seeds`` and ``amp`` as ``.tex``."""
    cfg = analysis.config
    comp = analysis.comparison
    tables = {
        "coverage": (analysis.coverage, "Runs per stage and state."),
        "summary": (
            summary_table(analysis.summary) if not analysis.summary.empty else pd.DataFrame(),
            "Mean and sd over finished seeds per cell and arm (fractions in percent).",
        ),
        "comparison": (
            comparison_table(comp) if not comp.empty else pd.DataFrame(),
            f"Paired difference a - b per cell, arm pair and metric with the interval its "
            f"verdict read, at the row's Holm-adjusted level (pp for fractions, percent for "
            f"ratios); paired t p-values Holm-adjusted over the "
            f"{int(comp['family_size'].iloc[0]) if not comp.empty else 0} tested rows; "
            f"alpha = {cfg.alpha}.",
        ),
        "seeds": (
            seeds_table(comp) if not comp.empty else pd.DataFrame(),
            f"Seed pairs needed for {cfg.power:.0%} power: to show equivalence within the margin "
            "(TOST, true difference 0) and to detect a difference of the margin (paired t).",
        ),
        "amp": (
            amp_table(analysis.amp) if not analysis.amp.empty else pd.DataFrame(),
            "AMP effect per arm: speed-up (fp32 / amp epoch time) and accuracy change.",
        ),
    }
    return [
        write_text(
            out / f"{name}.tex",
            to_latex(frame, caption.replace("%", r"\%"), name, name in LANDSCAPE),
        )
        for name, (frame, caption) in tables.items()
    ]
