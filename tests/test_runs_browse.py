"""`fwbench runs ls/show/compare/export/clean` and `status` on a workspace of finished, failed,
hand-trained and orphaned runs (no training: the run directories are written directly)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

from fwbench.config.train import load_train_config
from fwbench.core.paths import Workspace
from fwbench.record.runs import RunDir, make_spec
from test_sweeps import BASE, STAGES, _finish, _specs

MATRIX = STAGES | {"unused": BASE | {"seeds": [9]}}
FAILED = ("training.label_smoothing=0.1",)  # a `run --stage base --set ...` that failed


@pytest.fixture
def ws(tmp_path) -> Workspace:
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "experiment_matrix.yaml").write_text(yaml.safe_dump({"stages": MATRIX}))
    ws = Workspace(tmp_path)
    for spec in _specs("lr_sweep"):  # 2 frameworks x lr 0.05, 0.1 (seed 1)
        _finish(ws, spec, 0.5 + spec.train_config.lr.base_lr)
    trained = make_spec(  # as `fwbench train --set lr.base_lr=0.3` makes it (no stage)
        load_train_config().merged({"lr": {"base_lr": 0.3}}, "test"),
        dataset="digits", model="mobilenetv2", precision="fp32", seed=7, framework="pytorch",
        epochs_override=2, overrides=["lr.base_lr=0.3"],
    )  # fmt: skip
    _finish(ws, trained, 0.7)
    failed = _specs("base", sets=FAILED)[0]
    RunDir(ws.runs_dir / failed.run_id).write_spec(failed)
    RunDir(ws.runs_dir / failed.run_id).set_status("failed", error="ValueError: loader exploded")
    (ws.runs_dir / "leftover").mkdir()
    return ws


def _ok(run_cli, *args):
    res = run_cli(*args)
    assert res.code == 0, res.err
    return res.out


def test_ls_lists_every_run_with_its_settings_and_filters_on_any_setting(ws, run_cli):
    out = _ok(run_cli, "runs", "ls", "-w", ws.root)
    assert "6 of 6 runs" in out
    rows = json.loads(_ok(run_cli, "runs", "ls", "-w", ws.root, "--json"))
    by_settings = sorted((r["stage"], r["settings"], r["state"]) for r in rows)
    assert by_settings == [
        ("base", "training.label_smoothing=0.1", "failed"),
        ("lr_sweep", "lr.base_lr=0.05", "done"), ("lr_sweep", "lr.base_lr=0.05", "done"),
        ("lr_sweep", "lr.base_lr=0.1", "done"), ("lr_sweep", "lr.base_lr=0.1", "done"),
        ("train", "lr.base_lr=0.3", "done"),
    ]  # fmt: skip
    picked = json.loads(
        _ok(run_cli, "runs", "ls", "-w", ws.root, "--json", "--where", "lr.base_lr=0.1")
    )
    assert sorted(r["test_accuracy"] or 0 for r in picked) == [0, 0.6, 0.6]  # failed: none
    picked = json.loads(_ok(run_cli, "runs", "ls", "-w", ws.root, "--json", "--state", "failed"))
    assert [r["stage"] for r in picked] == ["base"]
    picked = json.loads(
        _ok(run_cli, "runs", "ls", "-w", ws.root, "--json", "-s", "train", "--where", "seed=7")
    )
    assert [r["settings"] for r in picked] == ["lr.base_lr=0.3"]
    res = run_cli("runs", "ls", "-w", ws.root, "--where", "lr.bse_lr=1")
    assert res.code == 2 and "unknown setting 'lr.bse_lr' (did you mean 'lr.base_lr'?)" in res.err


def test_show_and_compare_read_the_run_directories(ws, run_cli):
    a, b = (s.run_id for s in _specs("lr_sweep") if s.framework == "pytorch")
    out = _ok(run_cli, "runs", "show", a, "-w", ws.root)
    assert "settings  lr.base_lr=0.05" in out and "test top-1    0.55" in out
    assert f"log       {ws.runs_dir / a / 'train.log'}" in out
    assert "val acc" in out and len([ln for ln in out.splitlines() if ln[:2] in ("1 ", "2 ")]) == 2
    out = _ok(run_cli, "runs", "compare", a, b, "-w", ws.root)
    diff = [ln.split() for ln in out.splitlines() if ln.startswith("lr.base_lr")]
    assert diff == [["lr.base_lr", "0.05", "0.1"]]
    top1 = next(ln.split() for ln in out.splitlines() if ln.startswith("test top-1"))
    assert top1[-3:] == ["0.55", "0.6", "+0.05"]
    assert "A val acc  B val acc" in out
    res = run_cli("runs", "show", "digits", "-w", ws.root)
    assert res.code == 2 and "'digits' matches 6 runs" in res.err


def test_export_writes_runs_and_epochs(ws, run_cli, tmp_path):
    _ok(run_cli, "runs", "export", "-w", ws.root, "--out", tmp_path / "x")
    runs = pd.read_csv(tmp_path / "x" / "runs.csv")
    epochs = pd.read_csv(tmp_path / "x" / "epochs.csv")
    assert len(runs) == 6 and len(epochs) == 5 * 2  # 5 runs with 2 epochs each
    _ok(run_cli, "runs", "export", "-w", ws.root, "--format", "parquet", "-s", "lr_sweep")
    assert len(pd.read_parquet(ws.results_dir / "runs.parquet")) == 4


def test_clean_deletes_only_failed_and_orphaned_folders(ws, run_cli):
    failed = ws.runs_dir / _specs("base", sets=FAILED)[0].run_id
    out = _ok(run_cli, "runs", "clean", "-w", ws.root, "--dry-run")
    assert f"would delete failed    {failed}" in out and "would delete 2 run folder(s)" in out
    assert failed.is_dir() and (ws.runs_dir / "leftover").is_dir()
    out = _ok(run_cli, "runs", "clean", "-w", ws.root)
    assert "deleted 2 run folder(s)" in out
    assert not failed.exists() and not (ws.runs_dir / "leftover").exists()
    assert len(list(ws.runs_dir.iterdir())) == 5


def test_status_shows_stages_with_runs_and_runs_from_train(ws, run_cli):
    out = _ok(run_cli, "status", "-w", ws.root)
    stages = [
        ln.split()[0] for ln in out.splitlines()[1:] if ln.split() and ln.split()[1].isdigit()
    ]
    # every stage shares runs with lr_sweep (same settings) but `unused` (seed 9)
    assert stages == ["base", "base_seed1", "low_lr", "lr_sweep", "same_twice", "train"]
    assert "+ other settin     1           0           0           0           1" in out
    assert "[lr.base_lr=0.3]: test acc 0.7000" in out
    assert "failed digits-mobilenetv2-fp32-s1-pytorch-" in out
    assert "[training.label_smoothing=0.1]: ValueError: loader exploded" in out
    everything = _ok(run_cli, "status", "-w", ws.root, "--all")
    assert "unused" in everything
