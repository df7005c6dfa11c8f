"""``fwbench report``: plots plus ``report/report.md`` and one self-contained ``report.html``.

The Markdown links the PNGs in ``plots/``; the HTML embeds them as base64 data URIs, so the
one file can be mailed, archived or opened offline.
"""

from __future__ import annotations

import base64
import html
import time
from collections.abc import Callable
from pathlib import Path

import markdown
import pandas as pd

from fwbench.analysis import sections
from fwbench.analysis.plots import cell_label, make_plots
from fwbench.analysis.stats import (
    ALPHA,
    CELL,
    CONFIDENCE,
    INSUFFICIENT,
    MIN_SEEDS,
    N_RESAMPLES,
    RANDOM_STATE,
    Analysis,
    analyze,
)
from fwbench.analysis.tables import displays, write_analysis
from fwbench.fileio import write_text
from fwbench.paths import Workspace
from fwbench.results import load_results

ImageRef = Callable[[Path, str], str]
CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1200px;
margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
table{border-collapse:collapse;margin:0.8em 0;font-size:0.85em;display:block;overflow-x:auto}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#f3f3f3} tr:nth-child(even) td{background:#fafafa}
img{max-width:100%;border:1px solid #eee;margin:0.5em 0}
pre{background:#f6f8fa;padding:0.8em;overflow-x:auto;font-size:0.85em}
code{background:#f6f8fa;padding:0 3px} h2{border-bottom:1px solid #ddd;padding-bottom:3px}
"""


def _relative_image(report_dir: Path) -> ImageRef:
    def ref(path: Path, alt: str) -> str:
        rel = Path("..") / path.relative_to(report_dir.parent)
        return f"![{alt}]({rel.as_posix()})"

    return ref


def _embedded_image(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f"![{alt}](data:image/png;base64,{data})"


def _conclusions(analysis: Analysis) -> str:
    comp = analysis.comparison
    if comp.empty:
        return "No cells to compare: no run has finished."
    acc = comp[comp["metric"] == "test_accuracy"]
    tested = acc[acc["status"] == "tested"]
    significant = int(tested["significant"].fillna(False).sum())
    lines = [
        f"- Test accuracy, PyTorch vs Keras: {len(tested)} of {len(acc)} cell(s) tested; "
        f"{significant} of them with a significant difference after Holm correction across "
        f"cells (α = {ALPHA})."
    ]
    for _, cell in comp.groupby(CELL, sort=True):
        rows = {r["metric"]: r for r in cell.to_dict("records")}
        head = rows["test_accuracy"]
        lines.append(f"- **{cell_label(head)}** — {head['conclusion']}.")
        if head["status"] != INSUFFICIENT:
            for metric in ("test_macro_f1", "epoch_time_s"):
                lines.append(f"    - {rows[metric]['conclusion']}.")
    for row in analysis.amp.to_dict("records"):
        speed = row["speedup"]
        speed_text = f"AMP speed-up {speed:.2f}× (fp32/amp epoch time); " if speed == speed else ""
        lines.append(
            f"- **{row['dataset']}/{row['model']}, {row['framework']}** — {speed_text}"
            f"{row['conclusion']}."
        )
    return "\n".join(lines)


def _methods() -> str:
    return (
        f"Seeds are the replicate unit; only runs in state `done` with test metrics count. Per "
        f"cell and framework: mean, sd (n−1) and a t-based {CONFIDENCE:.0%} CI of the mean. "
        f"PyTorch − Keras: difference of means with a {CONFIDENCE:.0%} bootstrap CI "
        f"(`scipy.stats.bootstrap`, BCa, percentile where BCa is degenerate, {N_RESAMPLES} "
        f"resamples, seed {RANDOM_STATE}); Welch's t (`scipy.stats.ttest_ind`, unequal "
        f"variances); Mann–Whitney U (`scipy.stats.mannwhitneyu`, two-sided); Hedges' g "
        f"(`pingouin.compute_effsize`); Holm correction across cells, per metric "
        f"(`statsmodels` `multipletests`). Cells with fewer than {MIN_SEEDS} finished seeds in "
        f"either framework are reported as '{INSUFFICIENT}' and not tested. Decisions use the "
        f"Holm-corrected Welch p; Mann–Whitney is a distribution-free check."
    )


def build_markdown(
    ws: Workspace, runs: pd.DataFrame, analysis: Analysis, plots: dict, image: ImageRef
) -> str:
    """The whole report as Markdown; ``image(path, alt)`` decides how figures are referenced."""
    views = displays(analysis)
    stages = ", ".join(sorted(runs["stage"].dropna().unique())) or "(none recorded)"
    out = [
        "# fwbench report: PyTorch vs Keras",
        f"Generated {time.strftime('%Y-%m-%d %H:%M:%S')} from `{ws.root}`; stages: {stages}; "
        f"{len(runs)} runs in `results/runs.csv`.",
        "## Environment",
        sections.environment(ws, runs),
        "## Configuration",
        sections.train_configs(ws, runs),
        "## Matrix coverage",
        sections.coverage(analysis, runs),
        "## Fairness checks",
        sections.fairness(ws),
        "## Results per cell",
        "Mean ± sd over finished seeds [t-based 95% CI]; seeds counted as "
        "done/failed/diverged/other (other = pending, running or interrupted).",
        sections.md_table(views["summary"]),
        "### PyTorch − Keras",
        sections.md_table(views["comparison"]),
        "### Test accuracy distributions",
        *(image(p, "test accuracy per cell") for p in plots["accuracy"]),
        "### Learning curves",
        *(image(p, f"learning curves {p.stem}") for p in plots["curves"]),
    ]
    if not plots["curves"]:
        out.append("No finished run has epoch records yet.")
    out += ["## Time and throughput"]
    out += [image(p, "epoch time and throughput") for p in plots["speed"]] or ["No timings."]
    out += ["## AMP effect"]
    if analysis.amp.empty:
        out.append("No (dataset, model, framework) has both fp32 and amp runs in these results.")
    else:
        out.append(sections.md_table(views["amp"]))
        out += [image(p, "AMP effect") for p in plots["amp"]]
    out += ["## Conclusions", _conclusions(analysis)]
    out += ["## Limitations", "\n".join(f"- {n}" for n in sections.limitations(ws, runs, analysis))]
    out += ["## Methods", _methods()]
    return "\n\n".join(out) + "\n"


def to_html(markdown_text: str, title: str = "fwbench report") -> str:
    """One standalone HTML page (inline CSS, no external resources) from the report Markdown."""
    body = markdown.markdown(markdown_text, extensions=["tables", "fenced_code", "toc"])
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head>\n"
        f"<body>\n{body}\n</body></html>\n"
    )


def write_report(ws: Workspace) -> dict[str, Path | list[Path]]:
    """Analyse the collected results, draw the plots and write the Markdown and HTML report."""
    runs, epochs = load_results(ws)
    analysis = analyze(runs)
    tables = write_analysis(ws, analysis)
    plots = make_plots(runs, epochs, analysis, ws.plots_dir)
    md_path = write_text(
        ws.report_dir / "report.md",
        build_markdown(ws, runs, analysis, plots, _relative_image(ws.report_dir)),
    )
    html_path = write_text(
        ws.report_dir / "report.html",
        to_html(build_markdown(ws, runs, analysis, plots, _embedded_image)),
    )
    figures = [p for paths in plots.values() for p in paths]
    return {"markdown": md_path, "html": html_path, "plots": figures, "tables": tables}
