"""A recorded result counts only after it is verified: a run directory whose files are not
whole and true is ``corrupt`` with its reason in ``status`` and ``collect``, left out of every
statistic, counted in the analysis; nothing outside the damaged run changes."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

import runfixtures
from fwbench.record.runs import RunDir

RUN = "digits-mobilenetv2-fp32-s1-pytorch"


def _edit_json(path, change):
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def _edit_epoch(field, value, line=2):
    def damage(run: RunDir):
        lines = run.epochs_path.read_text().splitlines()
        record = json.loads(lines[line - 1])
        record[field] = value
        lines[line - 1] = json.dumps(record)  # NaN and Infinity are written as JSON allows
        run.epochs_path.write_text("\n".join(lines) + "\n")

    return damage


def _copy_of_seed_2(run: RunDir):
    other = runfixtures.find_run(run.path.parent, RUN.replace("-s1-", "-s2-"))
    shutil.rmtree(run.path)
    shutil.copytree(other.path, run.path)


def _edited_spec(run: RunDir):
    _edit_json(run.spec_path, lambda d: d["train_config"]["lr"].update(base_lr=0.5))


DAMAGE = {
    "val accuracy NaN": (_edit_epoch("val_accuracy", float("nan")), "val_accuracy is nan"),
    "train loss Infinity": (_edit_epoch("train_loss", float("inf")), "train_loss is inf"),
    "val accuracy null": (_edit_epoch("val_accuracy", None), "has no val_accuracy"),
    "negative loss": (_edit_epoch("val_loss", -1.0), "val_loss is -1, outside >= 0"),
    "epoch as text": (_edit_epoch("train_accuracy", "0.5"), "train_accuracy is str"),
    "test accuracy 1.5": (
        lambda r: _edit_json(r.test_path, lambda d: d.update(accuracy=1.5)),
        "test.json: accuracy is 1.5, outside [0, 1]",
    ),
    "test accuracy as text": (
        lambda r: _edit_json(r.test_path, lambda d: d.update(accuracy="high")),
        "test.json: accuracy is str",
    ),
    "per-class accuracy above 1": (
        lambda r: _edit_json(r.test_path, lambda d: d.update(per_class_accuracy=[0.5, 2])),
        "per_class_accuracy[1] is 2",
    ),
    "spec edited, hash kept": (_edited_spec, "does not hash to its config_hash"),
    "a copy of another seed's run": (_copy_of_seed_2, "spec.json is run digits-mobilenetv2"),
    "status state of the wrong type": (
        lambda r: _edit_json(r.status_path, lambda d: d.update(state=5)),
        "status.json has state '5'",
    ),
    "status time as text": (
        lambda r: _edit_json(r.status_path, lambda d: d.update(finished_at="yesterday")),
        "status.json: finished_at is str",
    ),
    "status a list": (lambda r: r.status_path.write_text("[1, 2]"), "status.json holds a list"),
}


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    return runfixtures.build_workspace(tmp_path_factory.mktemp("recorded") / "fx")


@pytest.mark.slow
@pytest.mark.parametrize("case", list(DAMAGE))
def test_a_result_that_is_not_true_is_corrupt_and_counts_nowhere(
    run_cli, pristine, tmp_path, monkeypatch, case
):
    ws = tmp_path / "ws"
    shutil.copytree(pristine, ws)
    monkeypatch.setenv("FWBENCH_WORKSPACE", str(ws))
    run = runfixtures.find_run(ws / "runs", RUN)
    damage, reason = DAMAGE[case]
    damage(run)

    status = run_cli("status", "--stage", runfixtures.STAGE)
    assert status.code == 0, status.err
    line = next(ln for ln in status.out.splitlines() if run.run_id in ln)
    assert line.startswith("corrupt") and reason in line, status.out

    assert run_cli("collect", "--stage", runfixtures.STAGE).code == 0
    runs = pd.read_csv(ws / "results" / "runs.csv")
    assert runs["run_id"].is_unique  # no run counts twice
    row = runs.set_index("run_id").loc[run.run_id]
    assert row["state"] == "corrupt" and reason in row["note"]
    assert pd.isna(row["test_accuracy"]) and pd.isna(row["best_val_accuracy"])
    epochs = pd.read_parquet(ws / "results" / "epochs.parquet")
    assert not (epochs["seed"].eq(1) & epochs["model"].eq("mobilenetv2")).all()
    assert run_cli("analyze").code == 0
    coverage = pd.read_csv(ws / "analysis" / "coverage.csv").set_index("stage")
    assert int(coverage.loc[runfixtures.STAGE, "corrupt"]) == 1


def test_two_directories_holding_the_same_run_count_once(run_cli, pristine, tmp_path, monkeypatch):
    ws = tmp_path / "ws"
    shutil.copytree(pristine, ws)
    monkeypatch.setenv("FWBENCH_WORKSPACE", str(ws))
    run = runfixtures.find_run(ws / "runs", RUN)
    shutil.copytree(run.path, ws / "runs" / "copies" / run.run_id)  # the same run, twice
    assert run_cli("collect").code == 0
    runs = pd.read_csv(ws / "results" / "runs.csv")
    mine = runs[runs["run_id"] == run.run_id]
    assert sorted(mine["state"]) == ["corrupt", "done"]
    assert "holds run" in mine.loc[mine["state"] == "corrupt", "note"].iloc[0]
