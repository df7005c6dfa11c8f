"""``fwbench report``: real PNG figures, one self-contained HTML file, statements the tests back."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
from matplotlib import image

from fwbench.analysis.report import write_report
from fwbench.paths import Workspace
from fwbench.results import collect_runs, write_results
from runfixtures import build_workspace

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


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


def test_plots_are_nonempty_png_images(written):
    names = sorted(p.name for p in written["plots"])
    assert names == sorted(
        [
            "amp_effect.png",
            "curves_digits-mobilenetv2-amp.png",
            "curves_digits-mobilenetv2-fp32.png",
            "curves_digits-resnet50-amp.png",
            "curves_digits-resnet50-fp32.png",
            "test_accuracy_by_cell.png",
            "time_throughput.png",
        ]
    )
    for path in written["plots"]:
        data = path.read_bytes()
        assert data[:8] == PNG_SIGNATURE and len(data) > 20_000, path.name
        pixels = image.imread(path)
        assert pixels.ndim == 3 and pixels.shape[0] > 200 and pixels.shape[1] > 400
        assert float(np.var(pixels[..., :3])) > 1e-3, f"{path.name} is blank"


def test_html_is_one_self_contained_file_with_every_figure_embedded(written):
    html = written["html"].read_text(encoding="utf-8")
    srcs = re.findall(r'src="([^"]*)"', html)
    assert len(srcs) == len(written["plots"])
    assert all(s.startswith("data:image/png;base64,") for s in srcs)
    assert not re.search(r'(href|src)="(https?:|//|file:)', html)
    assert "<link" not in html and "<script" not in html
    md = written["markdown"].read_text(encoding="utf-8")
    assert "](../plots/test_accuracy_by_cell.png)" in md  # the Markdown links the files


def test_report_words_each_cell_by_its_statistics(written):
    md = written["markdown"].read_text(encoding="utf-8")
    conclusions = md.split("## Conclusions")[1].split("## Limitations")[0]
    lines = {
        ln.split("** — ")[0].strip("- *"): ln for ln in conclusions.splitlines() if "** — " in ln
    }
    assert "significant after Holm correction (p_holm = 0.00358" in lines["digits/mobilenetv2/fp32"]
    assert "Hedges' g = 4.46 (large)" in lines["digits/mobilenetv2/fp32"]
    assert "zero variance in both arms" in lines["digits/mobilenetv2/amp"]
    assert "insufficient seeds" in lines["digits/resnet50/fp32"]
    assert "pytorch n=3, keras n=1" in lines["digits/resnet50/fp32"]
    assert "insufficient seeds" in lines["digits/resnet50/amp"]
    assert "no significant difference after Holm correction" in lines["digits/mobilenetv2, keras"]


def test_report_sections_cover_coverage_fairness_and_limitations(ws, written):
    md = written["markdown"].read_text(encoding="utf-8")
    for heading in (
        "Environment",
        "Configuration",
        "Matrix coverage",
        "Fairness checks",
        "Results per cell",
        "Time and throughput",
        "AMP effect",
        "Limitations",
    ):
        assert f"## {heading}" in md
    coverage = pd.read_csv(ws.analysis_dir / "coverage.csv").set_index("stage").loc["fx"]
    assert coverage.to_dict() == {
        "done": 17,
        "running": 1,
        "interrupted": 0,
        "failed": 1,
        "diverged": 1,
        "pending": 4,
        "total": 24,
    }
    assert "| fx | 17 | 1 | 0 | 1 | 1 | 4 | 24 |" in re.sub(" +", " ", md)
    assert "RuntimeError: out of memory" in md
    assert "**all pass**: 2 pass, 0 fail (column `pass`)" in md
    assert "**1 FAIL**: 1 pass, 1 fail (column `passed`)" in md
    assert "`results/model_audit.csv` is produced by `fwbench models audit`" in md
    assert "run `fwbench env`" in md
    assert "smallest attainable two-sided Mann–Whitney p is 0.1" in md
    assert "subset of 300 images" in md and "Trained on CPU" in md


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


def test_collect_analyze_report_run_with_frameworks_not_importable(tmp_path):
    ws = build_workspace(tmp_path / "ws")
    proc = subprocess.run(
        [sys.executable, "-c", BLOCKED_RUNNER, str(ws), "collect", "analyze", "report"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "FRAMEWORK-FREE OK" in proc.stdout
    assert (ws / "analysis" / "comparison.tex").read_text().startswith("\\begin{tabular}")
    assert (ws / "report" / "report.html").stat().st_size > 100_000
