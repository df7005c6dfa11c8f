"""Analysis tables for reading: display formatting and CSV / Markdown / LaTeX files.

CSV keeps every column at full precision (for further work); Markdown and LaTeX carry the
formatted view a reader or a paper needs.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from fwbench.analysis.stats import CELL, METRICS, Analysis, format_value
from fwbench.fileio import atomic_write, write_text
from fwbench.paths import Workspace

TABLES = ("coverage", "summary", "comparison", "amp")


def _p(value: float) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.3g}"


def _ci(metric: str, low: float, high: float, signed: bool = False) -> str:
    if not (math.isfinite(low) and math.isfinite(high)):
        return "n/a"
    return f"[{format_value(metric, low, signed)}, {format_value(metric, high, signed)}]"


def _mean_sd(metric: str, mean: float, sd: float) -> str:
    if not math.isfinite(mean):
        return "n/a"
    if not math.isfinite(sd):
        return format_value(metric, mean)
    if metric in ("test_accuracy", "test_macro_f1"):
        return f"{mean * 100:.2f} ± {sd * 100:.2f} %"
    return f"{format_value(metric, mean)} ± {sd:.2f}"


def summary_display(
    summary: pd.DataFrame, metrics: tuple[str, ...] = tuple(METRICS)
) -> pd.DataFrame:
    """Per cell and framework: seeds and ``mean ± sd [95% CI]`` of each metric."""
    if summary.empty:
        return summary
    out = summary[[*CELL, "framework"]].copy()
    out["seeds done/failed/diverged/other"] = [
        f"{r.n_done}/{r.n_failed}/{r.n_diverged}/{r.n_other}" for r in summary.itertuples()
    ]
    for metric in metrics:
        m, sd, lo, hi = (summary[f"{metric}_{s}"] for s in ("mean", "sd", "ci_low", "ci_high"))
        out[METRICS[metric]] = [
            f"{_mean_sd(metric, a, b)} {_ci(metric, c, d)}"
            if math.isfinite(c)
            else _mean_sd(metric, a, b)
            for a, b, c, d in zip(m, sd, lo, hi, strict=True)
        ]
    return out


def comparison_display(comparison: pd.DataFrame) -> pd.DataFrame:
    """Per cell and metric: PyTorch − Keras, CI, p-values, Holm, Hedges' g, outcome."""
    if comparison.empty:
        return comparison
    rows = []
    for r in comparison.to_dict("records"):
        m = r["metric"]
        outcome = (
            r["status"]
            if r["status"] != "tested"
            else ("significant" if r["significant"] else "not significant")
        )
        rows.append(
            {k: r[k] for k in CELL}
            | {
                "metric": METRICS[m],
                "n (pt/keras)": f"{r['n_pytorch']}/{r['n_keras']}",
                "PyTorch": format_value(m, r["mean_pytorch"]),
                "Keras": format_value(m, r["mean_keras"]),
                "PyTorch − Keras": format_value(m, r["diff"], signed=True),
                "95% bootstrap CI": _ci(m, r["ci_low"], r["ci_high"], signed=True),
                "Welch p": _p(r["welch_p"]),
                "Mann–Whitney p": _p(r["mwu_p"]),
                "p_holm": _p(r["p_holm"]),
                "Hedges' g": "n/a" if not math.isfinite(r["hedges_g"]) else f"{r['hedges_g']:.2f}",
                "outcome (α = 0.05, Holm)": outcome,
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
        rows.append(
            {k: r[k] for k in ("dataset", "model", "variant", "framework")}
            | {
                "n (fp32/amp)": f"{r['n_fp32']}/{r['n_amp']}",
                "speed-up (fp32/amp epoch time)": speedup,
                "speed-up 95% CI": ci,
                "accuracy fp32": format_value("test_accuracy", r["acc_fp32"]),
                "accuracy amp": format_value("test_accuracy", r["acc_amp"]),
                "accuracy change": format_value("test_accuracy", r["acc_change"], signed=True),
                "95% bootstrap CI": _ci("test_accuracy", r["ci_low"], r["ci_high"], signed=True),
                "p_holm": _p(r["p_holm"]),
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
        "summary": summary_display(analysis.summary),
        "comparison": comparison_display(analysis.comparison),
        "amp": amp_display(analysis.amp),
    }


def to_markdown(frame: pd.DataFrame, empty: str = "_(no rows)_") -> str:
    """A GitHub-style Markdown table, or ``empty`` for a table without rows."""
    return empty if frame.empty else frame.to_markdown(index=False)


def write_analysis(ws: Workspace, analysis: Analysis) -> list[Path]:
    """Write ``analysis/<table>.csv`` (full precision), ``.md`` and ``.tex`` (formatted)."""
    out = ws.analysis_dir
    written = []
    views = displays(analysis)
    for name in TABLES:
        raw: pd.DataFrame = getattr(analysis, name)
        view = views[name]
        written.append(atomic_write(out / f"{name}.csv", lambda p, f=raw: f.to_csv(p, index=False)))
        written.append(write_text(out / f"{name}.md", to_markdown(view) + "\n"))
        latex = view.to_latex(index=False, escape=True) if not view.empty else "% no rows\n"
        written.append(write_text(out / f"{name}.tex", latex))
    return written
