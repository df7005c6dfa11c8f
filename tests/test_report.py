"""``fwbench report``: it leads with its answer, its figures come as PNG/SVG/PDF, its LaTeX
compiles, its verdict column is visible at 1280 px in a real browser, and no framework loads."""

from __future__ import annotations

import html as htmllib
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
from matplotlib import image
from PIL import Image

from fwbench.analysis.report import write_report
from fwbench.core.paths import Workspace
from fwbench.study.collect import collect_runs, write_results
from runfixtures import build_workspace

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
IN_CI = os.environ.get("CI", "").lower() == "true"


def _tool(*names: str) -> str:
    """The path of the first installed tool; skip without it (fail under CI=true)."""
    found = next((shutil.which(n) for n in names if shutil.which(n)), None)
    if found is None:
        message = f"{' / '.join(names)} not installed (CI installs it: .ci/run)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    return found


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Workspace:
    ws = Workspace(build_workspace(tmp_path_factory.mktemp("ws")))
    ws.results_dir.mkdir()
    (ws.results_dir / "param_comparison.csv").write_text(
        "model,input_size,classes,trainable_pytorch,trainable_keras,diff_pct,pass\n"
        "mobilenetv2,32,10,2236682,2236682,0.0,True\n"
        "resnet50,32,10,23520842,23547402,0.11,True\n"
    )
    (ws.results_dir / "parity_pixels.json").write_text(
        '[{"dataset": "digits", "max_abs_diff": 0.0, "passed": true},'
        ' {"dataset": "cifar10", "max_abs_diff": 0.2, "passed": false}]'
    )
    runs, epochs = collect_runs(ws, ["fx"])
    write_results(ws, runs, epochs)
    return ws


@pytest.fixture(scope="module")
def written(ws):
    return write_report(ws)


@pytest.fixture(scope="module")
def md(written) -> str:
    return written["markdown"].read_text(encoding="utf-8")


FIGURES = [
    "amp_effect", "confusion_digits-mobilenetv2-amp", "confusion_digits-mobilenetv2-fp32",
    "confusion_digits-resnet50-amp", "confusion_digits-resnet50-fp32",
    "curves_digits-mobilenetv2-amp", "curves_digits-mobilenetv2-fp32",
    "curves_digits-resnet50-amp", "curves_digits-resnet50-fp32", "forest",
    "test_accuracy_by_cell", "time_throughput",
]  # fmt: skip


@pytest.mark.slow
def test_every_figure_is_a_300_dpi_png_with_svg_and_pdf_beside_it(written):
    assert sorted(p.stem for p in written["plots"]) == FIGURES
    for path in written["plots"]:
        data = path.read_bytes()
        assert data[:8] == PNG_SIGNATURE and len(data) > 20_000, path.name
        assert Image.open(path).info["dpi"] == pytest.approx((300, 300), abs=0.1)
        pixels = image.imread(path)
        assert pixels.ndim == 3 and pixels.shape[0] > 600 and pixels.shape[1] > 1200
        assert float(np.var(pixels[..., :3])) > 1e-3, f"{path.name} is blank"
        svg = path.with_suffix(".svg").read_text(encoding="utf-8")
        assert svg.startswith("<?xml") and "<svg" in svg
        assert path.with_suffix(".pdf").read_bytes()[:5] == b"%PDF-"


def test_html_is_one_self_contained_file_with_every_figure_embedded(written, md):
    html = written["html"].read_text(encoding="utf-8")
    srcs = re.findall(r'src="([^"]*)"', html)
    assert len(srcs) == len(written["plots"])
    assert all(s.startswith("data:image/svg+xml;base64,") for s in srcs)
    assert not re.search(r'(href|src)="(https?:|//|file:)', html)
    assert "<link" not in html and "<script" not in html
    assert "](../plots/forest.png)" in md  # the Markdown links the files


def test_report_leads_with_the_question_the_verdicts_and_the_forest_plot(md):
    order = [
        "**The question.**", "## Verdicts", "| cell", "Each verdict reads one interval",
        "Excluded from every test",
        "](../plots/forest.png)", "**Contents**", "## Results", "## Learning curves",
        "## Confusion matrices", "## Time and throughput", "## Appendix",
    ]  # fmt: skip
    positions = [md.index(s) for s in order]
    assert positions == sorted(positions)
    first_screen = md[: md.index("**Contents**")]
    rows = {
        ln.split("|")[1].strip(): re.sub(" +", " ", ln)
        for ln in first_screen.splitlines()
        if "| digits/" in ln
    }
    # every seed 0.90 in both arms: no test, no evidence of equivalence
    assert "| all seeds identical (no test) | +0.00 pp |" in rows["digits/mobilenetv2/amp"]
    # 3 pairs: the t interval at the row's Holm level (a bootstrap would give the seeds' range)
    assert (
        "| different — beyond ±0.50 pp | +4.47 pp [+1.22 pp, +7.72 pp] |"
        in (rows["digits/mobilenetv2/fp32"])
    )
    assert (
        "no verdict: 1 paired seed(s) finished; a verdict needs 3" in rows["digits/resnet50/fp32"]
    )
    assert "(excluded keras: 1 diverged, 1 failed)" in rows["digits/resnet50/fp32"]
    assert "Holm over one family of 8 paired t-tests" in first_screen
    assert first_screen.count("a − b [adjusted CI]") == 1  # no two columns share a header
    assert "nan" not in md and "-0.00" not in md and "−0.00" not in md
    assert "7 of 24 runs (1 diverged, 1 failed, 4 pending, 1 running)" in first_screen
    assert "with 3 pairs cannot go below p = 0.25" in first_screen  # t vs Wilcoxon, explained


def test_results_count_diverged_seeds_per_arm_with_fishers_test(md):
    results = md[md.index("### Divergence per arm") : md.index("### Every comparison")]
    # resnet50 fp32: pytorch 3 done; keras 1 done, 1 diverged (its failed seed did not end)
    row = "| digits/resnet50/fp32 | pytorch - keras | 0/3 | 1/2 | 0.4 (0.4) |"
    assert row in re.sub(" +", " ", results)


def test_results_state_the_primary_design_and_the_seeds_needed(md):
    results = md[md.index("## Results") : md.index("## Learning curves")]
    assert "**Primary: the paired statistics**" in results
    assert "Welch's t and Mann–Whitney U ignore the pairing" in results
    assert "seeds to show equivalence (80% power)" in results
    assert (
        "| digits/mobilenetv2/fp32 | pytorch - keras | test accuracy | 3 | 0.64 % | ±0.50 pp | "
        "decided with 3 |" in (re.sub(" +", " ", results))
    )
    assert "worst class a" in results and "class 0: -2.0 pp" not in results


def test_appendix_is_collapsible_and_every_contents_link_resolves(written):
    html = written["html"].read_text(encoding="utf-8")
    for title in ("Environment", "Configuration", "Matrix coverage and audit", "Fairness checks"):
        assert re.search(rf'<details id="appendix-[a-z-]+">\s*<summary>{title}</summary>', html)
    contents = html[html.index("<strong>Contents</strong>") :].split("</ul>\n</li>\n</ul>")[0]
    anchors = re.findall(r'href="#([^"]+)"', contents)
    assert len(anchors) >= 14
    for anchor in anchors:
        assert f'id="{anchor}"' in html, anchor


def test_report_sections_cover_coverage_fairness_and_limitations(ws, md):
    coverage = pd.read_csv(ws.analysis_dir / "coverage.csv").set_index("stage").loc["fx"]
    assert coverage.to_dict() == {
        "done": 17, "running": 1, "interrupted": 0, "failed": 1, "diverged": 1, "corrupt": 0,
        "pending": 4, "total": 24,
    }  # fmt: skip
    assert "| fx | 17 | 1 | 0 | 1 | 1 | 0 | 4 | 24 |" in re.sub(" +", " ", md)
    assert "RuntimeError: out of memory" in md
    assert "**all pass**: 2 pass, 0 fail (column `pass`)" in md
    assert "**1 FAIL**: 1 pass, 1 fail (column `passed`)" in md
    assert "`results/model_audit.csv` is produced by `fwbench models audit`" in md
    assert "run `fwbench env`" in md
    assert "smallest two-sided Wilcoxon p is 0.25" in md
    assert "subset of 300 images" in md and "Trained on CPU" in md


def test_latex_tables_are_numeric_booktabs_ascii_with_caption_and_label(ws, written):
    for name in ("coverage", "summary", "comparison", "seeds", "amp"):
        text = (ws.analysis_dir / f"{name}.tex").read_text(encoding="utf-8")
        assert text.isascii(), name
        assert text.startswith(("\\begin{table}", "\\begin{sidewaystable}")), name
        assert "\\toprule" in text and "\\bottomrule" in text
        assert "\\begin{tabularx}{\\linewidth}" in text and "\\small" in text
        assert "\\caption{" in text and f"\\label{{tab:fwbench-{name}}}" in text
    comp = (ws.analysis_dir / "comparison.tex").read_text()
    row = next(
        ln
        for ln in comp.splitlines()
        if ln.startswith("digits/\\allowbreak{}mobilenetv2/\\allowbreak{}fp32") and "Top-1" in ln
    )
    cells = [c.strip() for c in row.rstrip("\\ ").split("&")]
    assert cells[2:7] == ["Top-1 (pp)", "3", "4.47", "1.22", "7.72"]
    assert cells[-1] == "different, beyond margin"


def test_latex_tables_compile_with_pdflatex(ws, written, tmp_path):
    pdflatex = _tool("pdflatex")
    inputs = "\n".join(
        f"\\input{{{(ws.analysis_dir / n).as_posix()}.tex}}"
        for n in ("coverage", "summary", "comparison", "seeds", "amp")
    )
    doc = tmp_path / "tables.tex"
    # a plain article page, the packages the tables name: every table fits it
    doc.write_text(
        "\\documentclass{article}\n\\usepackage{booktabs,tabularx,rotating}\n"
        "\\begin{document}\n" + inputs + "\n\\end{document}\n"
    )
    proc = subprocess.run(
        [pdflatex, "-interaction=nonstopmode", "-halt-on-error", doc.name],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert (tmp_path / "tables.pdf").read_bytes()[:5] == b"%PDF-"
    log = (tmp_path / "tables.log").read_text(errors="replace")
    assert "Overfull \\hbox" not in log, re.findall(r"Overfull \\hbox[^\n]*", log)
    assert (
        "Table 5" in (tmp_path / "tables.aux").read_text()
        or "tab:fwbench-amp" in (tmp_path / "tables.aux").read_text()
    )


LAYOUT_PROBE = """<script>
window.addEventListener('load', () => {
  const th = [...document.querySelectorAll('th')]
    .find(t => t.textContent.trim().startsWith('test accuracy: verdict'));
  const table = th.closest('table');
  const box = e => {
    const r = e.getBoundingClientRect();
    return [r.left, r.right, r.top, r.bottom];
  };
  const cells = [...table.querySelectorAll('tbody tr')].map(tr => box(tr.children[th.cellIndex]));
  const out = {header: box(th), table: box(table), clientWidth: table.clientWidth,
               viewport: [window.innerWidth, window.innerHeight], cells: cells,
               text: table.querySelector('tbody tr').children[th.cellIndex].textContent};
  document.body.setAttribute('data-layout', JSON.stringify(out));
});
</script>"""


def _layout(written, tmp_path, width: int, probe: str) -> dict:
    """The report opened in headless Chromium at ``width`` px: what ``probe`` measured."""
    chromium = _tool("chromium", "chromium-headless-shell", "chromium-browser")
    page = tmp_path / f"probe{width}.html"
    page.write_text(
        written["html"].read_text(encoding="utf-8").replace("</body>", probe + "</body>")
    )
    window = width
    if width < MIN_WINDOW:  # headless windows are at least 500 px: a phone-wide frame inside
        frame = tmp_path / f"frame{width}.html"
        frame.write_text(PHONE_FRAME.format(width=width, src=page.name))
        page, window = frame, MIN_WINDOW
    proc = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp_path / f'profile{width}'}", f"--window-size={window},900",
         "--virtual-time-budget=5000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    found = re.search(r'data-layout="([^"]*)"', proc.stdout)
    assert found, proc.stderr[-2000:]
    return json.loads(htmllib.unescape(found.group(1)))


def test_verdict_column_is_visible_on_the_first_screen_of_a_1280_px_window(written, tmp_path):
    layout = _layout(written, tmp_path, 1280, LAYOUT_PROBE)
    width, height = layout["viewport"]
    assert width == 1280
    left, right, top, _ = layout["header"]
    table_left = layout["table"][0]
    assert 0 <= left < right <= width  # inside the window ...
    assert right <= table_left + layout["clientWidth"]  # ... and not scrolled away in its table
    assert top < height  # on the first screen
    assert len(layout["cells"]) == 4
    assert all(0 <= c[0] < c[1] <= width for c in layout["cells"])
    assert layout["text"].strip() == "all seeds identical (no test)"


PHONE_PROBE = """<script>
window.addEventListener('load', () => {
  const th = [...document.querySelectorAll('th')]
    .find(t => t.textContent.trim() === 'test accuracy: verdict');
  const table = th.closest('table');
  const cells = [...table.querySelectorAll('td[data-label="test accuracy: verdict"]')]
    .map(td => { const r = td.getBoundingClientRect();
                 return [r.left, r.right, td.textContent.trim()]; });
  const forest = [...document.querySelectorAll('img')].find(i => i.alt.startsWith('forest'));
  const out = {viewport: window.innerWidth, page: document.documentElement.scrollWidth,
               table: [table.scrollWidth, table.clientWidth], cells: cells,
               forest: forest.getBoundingClientRect().width};
  parent.postMessage(JSON.stringify(out), '*');
});
</script>"""
MIN_WINDOW = 500
PHONE_FRAME = """<!DOCTYPE html><html><body style="margin:0">
<iframe src="{src}" style="width:{width}px;height:900px;border:0"></iframe>
<script>window.addEventListener('message', e => document.body.setAttribute('data-layout', e.data));
</script></body></html>"""


def test_every_rows_verdict_shows_without_sideways_scrolling_on_a_390_px_phone(written, tmp_path):
    layout = _layout(written, tmp_path, 390, PHONE_PROBE)
    width = layout["viewport"]
    assert width == 390
    assert layout["page"] <= width  # the page itself does not scroll sideways
    assert layout["table"][0] <= layout["table"][1]  # nor does the verdict table
    assert len(layout["cells"]) == 4
    for left, right, text in layout["cells"]:
        assert 0 <= left < right <= width, text
    assert "all seeds identical (no test)" in [c[2] for c in layout["cells"]][0]
    assert layout["forest"] >= 700  # the forest plot keeps a legible size (it scrolls alone)


BLOCKED_RUNNER = textwrap.dedent(
    """
    import importlib.abc, sys

    BLOCKED = ("torch", "torchvision", "tensorflow", "keras")

    # A finder that refuses the frameworks: they are truly not importable. (Setting
    # sys.modules["torch"] = None is not usable: scipy's array-API helper dereferences
    # sys.modules["torch"] whenever the key exists.)
    class Refuse(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ModuleNotFoundError(f"{name} is blocked in this test", name=name)
            return None

    sys.meta_path.insert(0, Refuse())
    for name in BLOCKED:
        try:
            __import__(name)
        except ModuleNotFoundError:
            pass
        else:
            raise SystemExit(f"{name} was importable")

    from fwbench.cli import main

    workspace, commands = sys.argv[1], sys.argv[2:]
    for command in commands:
        sys.argv = ["fwbench", command, "--workspace", workspace]
        try:
            main()
        except SystemExit as e:
            if e.code:
                raise
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
    assert not loaded, loaded
    print("FRAMEWORK-FREE OK")
    """
)


@pytest.mark.slow
def test_collect_analyze_report_plan_run_with_frameworks_not_importable(tmp_path):
    ws = build_workspace(tmp_path / "ws")
    proc = subprocess.run(
        [sys.executable, "-c", BLOCKED_RUNNER, str(ws), "collect", "analyze", "plan", "report"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "FRAMEWORK-FREE OK" in proc.stdout
    assert (ws / "analysis" / "comparison.tex").read_text().startswith("\\begin{sidewaystable}")
    assert (ws / "report" / "report.html").stat().st_size > 100_000


def test_plots_keep_titles_whole_and_bands_inside_the_metrics_range(tmp_path, monkeypatch):
    import matplotlib.pyplot as plt

    from fwbench.analysis import plots

    saved = []
    real_save = plots._save

    def keep(fig, path):
        fig.canvas.draw()
        title = fig._suptitle.get_window_extent()
        saved.append((title.x0, title.x1, fig.bbox.x1))
        return real_save(fig, path)

    monkeypatch.setattr(plots, "_save", keep)
    runs = pd.DataFrame(
        [{"run_id": f"r{s}{f}", "dataset": "digits", "model": "mobilenetv2", "precision": "fp32",
          "variant": "library", "settings": "", "framework": f, "seed": s, "state": "done",
          "test_accuracy": 0.9 + 0.01 * s} for s in (1, 2, 3) for f in ("pytorch", "keras")]
    )  # fmt: skip
    plots.accuracy_distributions(runs, tmp_path)  # one cell: its title was cut on both sides
    left, right, width = saved[-1]
    assert 0 <= left < right <= width
    # epoch-1 losses 0.01, 0.2, 0.01: the t band would reach below 0, it stops there
    epochs = runs.loc[runs.index.repeat(2)].assign(
        epoch=[1, 2] * 6, val_loss=0.1,
        train_loss=[0.01, 0.2, 0.3, 0.2, 0.2, 0.2, 0.01, 0.2, 0.01, 0.2, 0.3, 0.2],
        val_accuracy=0.9, learning_rate=0.1,
    )  # fmt: skip
    lows = []
    real_fill = plt.Axes.fill_between

    def record(ax, x, low, high, **kw):
        lows.append(float(np.min(low)))
        return real_fill(ax, x, low, high, **kw)

    monkeypatch.setattr(plt.Axes, "fill_between", record)
    plots.learning_curves(epochs, tmp_path)
    assert lows and min(lows) >= 0
