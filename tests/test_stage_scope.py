"""`analyze --stage` and `report --stage`: only the runs the stages expect (the membership
`collect --stage` uses), outputs that say what they cover, one-line errors; the Python API alike.

Workspace: the verdict fixture (stage vx: 30 fp32 runs, all done; stage vd: 30 amp runs, 25
done) plus one vx run started with other settings (`run --set lr.base_lr=0.2`, accuracy 0.5),
all collected together as a plain `fwbench collect` does. Stage vx3 is vx with seeds 1-3 (it
shares 18 runs with vx).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pandas as pd
import pytest
import yaml

import fwbench
from fwbench.config.overrides import apply_sets
from fwbench.config.train import load_train_config
from fwbench.core.errors import FwbenchError
from fwbench.core.fileio import append_jsonl, write_json
from fwbench.core.paths import Workspace
from fwbench.record.runs import RunDir, make_spec
from fwbench.study.collect import collect_runs, load_results, write_results
from fwbench.study.stage_scope import select_stages
from runfixtures import _epoch_records
from verdictfixtures import BASE, build_verdict_workspace, matrix

OTHER = ["lr.base_lr=0.2"]


def _other_settings_run(root) -> str:
    """A finished vx run with settings the stage does not expect (as `run --set` leaves one)."""
    spec = make_spec(
        apply_sets(load_train_config(), OTHER), dataset="digits", model="mobilenetv2",
        precision="fp32", seed=1, framework="pytorch", epochs_override=4, subset=300,
        stage="vx", overrides=OTHER,
    )  # fmt: skip
    run = RunDir(root / "runs" / spec.run_id)
    run.write_spec(spec)
    run.set_status("running")
    for record in _epoch_records(0.5, 10.0):
        append_jsonl(run.epochs_path, record)
    write_json(run.test_path, {"accuracy": 0.5, "macro_f1": 0.49, "loss": 0.5, "best_epoch": 4})
    run.set_status("done")
    return spec.run_id


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    root = build_verdict_workspace(tmp_path_factory.mktemp("stages"))
    _other_settings_run(root)
    stages = matrix()["stages"]
    stages["vx3"] = stages["vx"] | {"seeds": [1, 2, 3]}  # shares 18 runs with vx
    (root / "configs" / "experiment_matrix.yaml").write_text(yaml.safe_dump({"stages": stages}))
    workspace = Workspace(root)
    write_results(workspace, *collect_runs(workspace))  # every run directory: 61 rows
    return workspace


def _cli(ws: Workspace, *args: str) -> subprocess.CompletedProcess:
    env = os.environ | {"FWBENCH_WORKSPACE": str(ws.root), "COLUMNS": "80"}
    return subprocess.run(
        [sys.executable, "-m", "fwbench.cli", *args],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )  # fmt: skip


def _summary(ws: Workspace) -> pd.DataFrame:
    return pd.read_csv(ws.analysis_dir / "summary.csv").set_index(["model", "framework"])


def test_analyze_stage_counts_only_the_runs_that_stage_expects(ws):
    proc = _cli(ws, "analyze", "--stage", "vx")
    assert proc.returncode == 0, proc.stderr
    line = "Covers only stage vx (--stage vx): 30 of 61 collected runs (vx: 30 of 30 done)."
    assert line in proc.stdout.splitlines()
    summary = _summary(ws)
    assert len(summary) == 6 and set(summary["precision"]) == {"fp32"}  # 3 models x 2 arms
    assert (summary["n_done"] == 5).all() and (summary["n_seeds"] == 5).all()
    # the other-settings run (0.5) started under vx is not one of its runs
    mean = sum(BASE) / len(BASE)
    assert summary.loc[("mobilenetv2", "pytorch"), "test_accuracy_mean"] == pytest.approx(mean)
    coverage = pd.read_csv(ws.analysis_dir / "coverage.csv")
    assert coverage["stage"].tolist() == ["vx"] and coverage["done"].sum() == 30
    for name in ("summary", "comparison", "verdicts"):
        first = (ws.analysis_dir / f"{name}.md").read_text(encoding="utf-8").splitlines()[0]
        assert first == f"_{line}_"


def test_selection_is_the_runs_collect_stage_collects(ws):
    collected, _ = load_results(ws)
    other = collected.loc[collected["settings"].str.contains("0.2"), "run_id"].tolist()
    assert len(other) == 1 and collected.query("stage == 'vx'").shape[0] == 31
    selected, _, scope = select_stages(ws, collected, None, ["vx"])
    assert set(selected["run_id"]) == set(collect_runs(ws, ["vx"])[0]["run_id"])
    assert other[0] not in set(selected["run_id"]) and len(selected) == 30
    assert scope.counts == {"vx": (30, 30, 30)}


def test_analyze_two_stages_and_no_stage(ws):
    proc = _cli(ws, "analyze", "-s", "vd", "-s", "vx")
    assert proc.returncode == 0, proc.stderr
    assert (
        "Covers only stages vd, vx (--stage vd --stage vx): 60 of 61 collected runs "
        "(vd: 25 of 30 done; vx: 30 of 30 done)." in proc.stdout.splitlines()
    )
    summary = _summary(ws)
    assert len(summary) == 12 and summary["n_done"].sum() == 55
    assert summary.query("precision == 'amp'")["n_diverged"].sum() == 3

    whole = _cli(ws, "analyze")  # unchanged: every collected run, the other settings too
    assert whole.returncode == 0, whole.stderr
    assert "Covers every collected run: 61 runs (stages: vd, vx)." in whole.stdout.splitlines()
    summary = _summary(ws)
    assert len(summary) == 13 and summary["n_done"].sum() == 56
    assert summary["settings"].fillna("").str.contains("lr.base_lr=0.2").sum() == 1


def test_unknown_stage_and_a_stage_without_finished_runs_are_one_line(ws):
    proc = _cli(ws, "analyze", "--stage", "nope")
    assert proc.returncode == 2 and proc.stdout == ""
    assert len(proc.stderr.splitlines()) == 1
    assert "unknown stage 'nope'; known: " in proc.stderr and "vd, vx" in proc.stderr
    report = _cli(ws, "report", "--stage", "nope")
    assert report.returncode == 2 and report.stderr == proc.stderr

    demo = _cli(ws, "analyze", "--stage", "demo")  # a built-in stage nobody ran here
    assert demo.returncode == 2 and len(demo.stderr.splitlines()) == 1
    assert "no finished run of stage demo in the collected results" in demo.stderr
    assert "fwbench run --stage demo" in demo.stderr

    mixed = _cli(ws, "analyze", "--stage", "vx", "--stage", "demo")
    assert mixed.returncode == 0, mixed.stderr
    lines = mixed.stdout.splitlines()
    assert "stage demo: no finished run in results/ (0 of its 6 runs collected, none done); " \
        "it adds nothing here" in lines  # fmt: skip
    assert len(_summary(ws)) == 6


def test_api_takes_stages_as_a_name_or_a_list(ws):
    one = fwbench.analyze(ws.root, stages="vx")
    assert len(one.summary) == 6 and set(one.summary["precision"]) == {"fp32"}
    both = fwbench.analyze(ws.root, stages=["vx", "vd"])
    assert len(both.summary) == 12 and both.summary["n_done"].sum() == 55
    runs, _ = load_results(ws)
    assert len(fwbench.analyze(runs, ws.root, "vd").summary) == 6
    with pytest.raises(FwbenchError, match="unknown stage 'nope'"):
        fwbench.analyze(ws.root, stages="nope")


@pytest.mark.slow
def test_report_stage_covers_that_stage_and_says_so(ws):
    proc = _cli(ws, "report", "--stage", "vd")
    assert proc.returncode == 0, proc.stderr
    line = "Covers only stage vd (--stage vd): 30 of 61 collected runs (vd: 25 of 30 done)."
    assert line in proc.stdout.splitlines()
    md = (ws.report_dir / "report.md").read_text(encoding="utf-8")
    assert md.startswith("# fwbench report (stage vd only): does the framework change")
    assert f"**{line}**" in md
    html = (ws.report_dir / "report.html").read_text(encoding="utf-8")
    assert "<title>fwbench report (stage vd only)</title>" in html and line in html
    summary = _summary(ws)  # the report's tables: vd's runs only
    assert len(summary) == 6 and set(summary["precision"]) == {"amp"}
    assert summary["n_done"].sum() == 25 and summary["n_diverged"].sum() == 3


def test_a_run_two_stages_share_is_one_row_and_counts_in_both(ws):
    runs, _ = collect_runs(ws, ["vx", "vx3"])
    assert len(runs) == 30 and runs["run_id"].is_unique and (runs["state"] == "done").all()
    selected, _, scope = select_stages(ws, load_results(ws)[0], None, ["vx3", "vx"])
    assert len(selected) == 30 and scope.counts == {"vx3": (18, 18, 18), "vx": (30, 30, 30)}
