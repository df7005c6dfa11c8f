"""``fwbench report``: plots plus ``report/report.md`` and one self-contained ``report.html``.

The report leads with its answer: the question, the verdict per cell and the forest plot. Then
results, learning curves, confusion matrices, time and throughput; then an appendix
(environment, configuration, coverage and audit, fairness) in collapsible sections. The
Markdown links the PNGs in ``plots/``; the HTML embeds the SVGs as data URIs, so the one file
can be mailed, archived or opened offline.
"""

from __future__ import annotations

import base64
import html
import re
import time
from collections.abc import Callable
from pathlib import Path

import markdown
import pandas as pd
from markdown.extensions.toc import slugify

from fwbench.analysis import attribution, sections
from fwbench.analysis.methods import methods, primary_statement, verdict_legend
from fwbench.analysis.pairs import arm_order
from fwbench.analysis.plots import make_plots
from fwbench.analysis.stats import Analysis, analyze
from fwbench.analysis.style import cell_label
from fwbench.analysis.tables import PRIMARY, displays, family_text, write_analysis
from fwbench.analysis.wording import arm_label
from fwbench.config.analysis import AnalysisConfig
from fwbench.core.fileio import write_text
from fwbench.core.paths import Workspace
from fwbench.study.collect import load_results
from fwbench.study.stage_scope import Scope, every_run, select_stages

ImageRef = Callable[[Path, str], str]
CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1200px;
margin:1em auto;padding:0 1em;color:#222;line-height:1.45}
table{border-collapse:collapse;margin:0.8em 0;font-size:0.85em;display:block;overflow-x:auto}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:left;vertical-align:top;
max-width:26em;overflow-wrap:break-word}
th{background:#f3f3f3} tr:nth-child(even) td{background:#fafafa}
img{max-width:100%;border:1px solid #eee;margin:0.5em 0}
pre{background:#f6f8fa;padding:0.8em;overflow-x:auto;font-size:0.85em}
code{background:#f6f8fa;padding:0 3px} h2{border-bottom:1px solid #ddd;padding-bottom:3px}
details{margin:0.6em 0;border:1px solid #ddd;padding:0.3em 0.8em}
summary{font-weight:600;cursor:pointer}
@media (max-width:640px){
body{padding:0 0.5em}
table{display:block;border:0}
thead{display:none}
tbody,tr{display:block}
tr{border:1px solid #ccc;margin:0 0 0.6em 0}
td{display:block;max-width:none;border:0;border-bottom:1px solid #eee}
td::before{content:attr(data-label);display:block;font-weight:600;color:#555}
p:has(>img){overflow-x:auto}
p>img{min-width:720px;max-width:none}
}
"""
APPENDIX = ("Environment", "Configuration", "Matrix coverage and audit", "Fairness checks")


def _relative_image(report_dir: Path) -> ImageRef:
    def ref(path: Path, alt: str) -> str:
        rel = Path("..") / path.relative_to(report_dir.parent)
        return f"![{alt}]({rel.as_posix()})"

    return ref


def _embedded_image(path: Path, alt: str) -> str:
    svg = path.with_suffix(".svg")
    data = base64.b64encode(svg.read_bytes()).decode("ascii")
    return f"![{alt}](data:image/svg+xml;base64,{data})"


def _question(runs: pd.DataFrame, cfg: AnalysisConfig) -> str:
    others = [arm_label(a) for a in arm_order(runs["framework"].unique()) if a != cfg.reference]
    return (
        f"**The question.** For each cell (dataset, model, precision, variant): does training "
        f"in {arm_label(cfg.reference)} or in {' / '.join(others) or 'another arm'} give a "
        f"different result, and at what speed? Each cell gets a verdict on the per-seed "
        f"difference against a declared margin ±δ: *different — beyond ±δ*, *different but "
        f"within ±δ*, *equivalent within ±δ* or *inconclusive*; no test where the seeds do not "
        f"vary, no verdict below {cfg.min_seeds} finished seed pairs."
    )


def _excluded(runs: pd.DataFrame) -> str:
    bad = runs[runs["state"] != "done"]
    if bad.empty:
        return "Every run of these results finished; none is excluded."
    counts = ", ".join(f"{n} {s}" for s, n in bad["state"].value_counts().sort_index().items())
    return (
        f"Excluded from every test: {len(bad)} of {len(runs)} runs ({counts}); the "
        "[audit](#appendix-matrix-coverage-and-audit) lists each with its reason."
    )


def _disagreements(analysis: Analysis) -> str:
    comp = analysis.comparison
    rows = comp[comp["why"].notna() & (comp["metric"] == PRIMARY)] if not comp.empty else comp
    lines = [
        f"- **{cell_label(r)}, {r['comparison']}**: {r['why']}" for r in rows.to_dict("records")
    ]
    if not lines:
        return ""
    return "Where the test-accuracy figures disagree, and why:\n\n" + "\n".join(lines)


def _conclusions(analysis: Analysis) -> str:
    comp = analysis.comparison
    if comp.empty:
        return "No cells to compare: no run has finished."
    lines = []
    keys = [c for c in ("dataset", "model", "precision", "variant", "settings") if c in comp]
    for _, cell in comp.groupby([*keys, "comparison"], dropna=False):
        first = cell.iloc[0]
        lines.append(f"- **{cell_label(first)}, {first['comparison']}**")
        lines += [f"    - {r['conclusion']}." for r in cell.to_dict("records")]
    for row in analysis.amp.to_dict("records"):
        speed = row["speedup"]
        speed_text = f"AMP speed-up {speed:.2f}× (fp32/amp epoch time); " if speed == speed else ""
        lines.append(
            f"- **{row['dataset']}/{row['model']}, {row['framework']}** — {speed_text}"
            f"{row['conclusion']}."
        )
    return "\n".join(lines)


def _details(title: str, body: str) -> str:
    anchor = "appendix-" + slugify(title, "-")
    return (
        f'<details id="{anchor}" markdown="1"><summary>{html.escape(title)}</summary>\n\n'
        f"{body}\n\n</details>"
    )


def _contents(titles: list[str]) -> str:
    lines = [f"- [{t}](#{slugify(t, '-')})" for t in titles]
    lines += [f"    - [{t}](#appendix-{slugify(t, '-')})" for t in APPENDIX]
    return "\n".join(lines)


def _figures(plots: dict, key: str, alt: str, image: ImageRef, empty: str) -> list[str]:
    return [image(p, f"{alt} {p.stem}") for p in plots[key]] or [empty]


def build_markdown(
    ws: Workspace,
    runs: pd.DataFrame,
    analysis: Analysis,
    plots: dict,
    image: ImageRef,
    scope: Scope | None = None,
) -> str:
    """The whole report as Markdown; ``image(path, alt)`` decides how figures are referenced;
    ``scope``: which collected runs it covers (default: all of ``runs``)."""
    views = displays(analysis)
    cfg = analysis.config
    scope = scope or every_run(runs)
    titles = [
        "Verdicts", "Results", "Learning curves", "Confusion matrices", "Time and throughput",
        "AMP effect", "Conclusions", "Limitations", "Methods", "Appendix",
    ]  # fmt: skip
    out = [
        f"# fwbench report{scope.title()}: does the framework change the result?",
        _question(runs, cfg),
        f"Generated {time.strftime('%Y-%m-%d %H:%M:%S')} from `{ws.root}/results/runs.csv`. "
        f"**{scope.text()}**",
        "## Verdicts",
        sections.md_table(views["verdicts"]),
        verdict_legend(analysis),
        _excluded(runs),
        *_figures(plots, "forest", "forest plot", image, "No comparison to plot."),
        _disagreements(analysis),
        "**Contents**",
        _contents(titles),
        "## Results",
        "### Per cell and arm",
        "Mean ± sd over finished seeds [t-based CI; † truncated to the metric's bounds]; seeds "
        "counted as done/failed/diverged/other (other: pending, running, interrupted, corrupt).",
        sections.md_table(views["summary"]),
        "### Divergence per arm",
        "Seeds that diverged out of the seeds that ended (done or diverged), per cell and arm "
        "pair; where the rates differ, Fisher's exact test (two-sided, Holm over this table). "
        "Diverged runs are left out of the metric tests, so an arm that diverges more shows here.",
        sections.md_table(views["divergence"], "_(no run diverged)_"),
        "### Every comparison, paired by seed",
        primary_statement(analysis),
        sections.md_table(views["comparison"]),
        *attribution.report_section(runs),
        "### Seeds needed",
        f"Seed pairs that would decide each comparison with {cfg.power:.0%} power, from the "
        f"observed sd of the paired differences, planned at {family_text(analysis)} (Bonferroni: "
        "Holm's first and strictest step, so each comparison has the power whatever its rank; "
        "`fwbench plan` answers this before a matrix). *decided*: the verdict is already "
        "reached; *no variation*: all seeds identical, nothing to plan from.",
        sections.md_table(views["seeds"]),
        "### Per-class accuracy",
        sections.md_table(views["per_class"], "_(no per-class accuracy in these results)_"),
        "### Test accuracy per seed",
        *_figures(plots, "accuracy", "test accuracy per cell", image, "No finished run."),
        "## Learning curves",
        *_figures(plots, "curves", "learning curves", image, "No epoch records yet."),
        "## Confusion matrices",
        *_figures(plots, "confusion", "confusion matrices", image, "No confusion matrix."),
        "## Time and throughput",
        *_figures(plots, "speed", "epoch time and throughput", image, "No timings."),
        "## AMP effect",
    ]
    if analysis.amp.empty:
        out.append("No (dataset, model, framework) has both fp32 and amp runs in these results.")
    else:
        out.append(sections.md_table(views["amp"]))
        out += [image(p, "AMP effect") for p in plots["amp"]]
    out += ["## Conclusions", _conclusions(analysis)]
    out += ["## Limitations", "\n".join(f"- {n}" for n in sections.limitations(ws, runs, analysis))]
    out += ["## Methods", methods(analysis)]
    out += [
        "## Appendix",
        _details("Environment", sections.environment(ws, runs)),
        _details("Configuration", sections.train_configs(ws, runs)),
        _details("Matrix coverage and audit", sections.coverage(analysis, runs)),
        _details("Fairness checks", sections.fairness(ws)),
    ]
    return "\n\n".join(s for s in out if s) + "\n"


def _label_cells(body: str) -> str:
    """Each table cell carries its column's header (``data-label``): on a phone a row becomes a
    card of labelled lines, so every row's verdict shows without sideways scrolling."""

    def one_table(match: re.Match) -> str:
        table = match.group(0)
        heads = [
            re.sub(r"<[^>]+>", "", h).strip()
            for h in re.findall(r"<th[^>]*>(.*?)</th>", table, flags=re.S)
        ]

        def one_row(row: re.Match) -> str:
            cells = iter(heads)
            return re.sub(
                r"<td(?=[\s>])",
                lambda _: f'<td data-label="{html.escape(next(cells, ""), quote=True)}"',
                row.group(0),
            )

        return re.sub(r"<tr>.*?</tr>", one_row, table, flags=re.S)

    return re.sub(r"<table>.*?</table>", one_table, body, flags=re.S)


def to_html(markdown_text: str, title: str = "fwbench report") -> str:
    """One standalone HTML page (inline CSS, no external resources) from the report Markdown."""
    body = markdown.markdown(
        markdown_text, extensions=["tables", "fenced_code", "toc", "md_in_html"]
    )
    body = _label_cells(body)
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head>\n"
        f"<body>\n{body}\n</body></html>\n"
    )


def write_report(
    ws: Workspace,
    cfg: AnalysisConfig | None = None,
    stages: list[str] | None = None,
    matrix: Path | None = None,
) -> dict[str, Path | list[Path] | Scope]:
    """Analyse the collected results (only the runs of ``stages``, if given), draw the plots and
    write the Markdown and HTML report; ``scope`` in the answer says which runs it covers."""
    runs, epochs = load_results(ws)
    runs, epochs, scope = select_stages(ws, runs, epochs, stages, matrix)
    analysis = analyze(runs, cfg)
    tables = write_analysis(ws, analysis, scope.text())
    plots = make_plots(runs, epochs, analysis, ws.plots_dir, ws.root)
    md_path = write_text(
        ws.report_dir / "report.md",
        build_markdown(ws, runs, analysis, plots, _relative_image(ws.report_dir), scope),
    )
    html_path = write_text(
        ws.report_dir / "report.html",
        to_html(
            build_markdown(ws, runs, analysis, plots, _embedded_image, scope),
            f"fwbench report{scope.title()}",
        ),
    )
    figures = [p for paths in plots.values() for p in paths]
    return {
        "markdown": md_path, "html": html_path, "plots": figures, "tables": tables, "scope": scope,
    }  # fmt: skip
