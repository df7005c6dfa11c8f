"""``fwbench collect``: every expected run is a row with its state; numbers come from the files."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from fwbench.core.fileio import append_jsonl
from fwbench.core.paths import Workspace
from fwbench.record.runs import RunDir
from fwbench.study.collect import collect_runs, epochs_frame
from runfixtures import ACC, EPOCHS, LAYOUT, SEEDS, build_workspace, by_readable_id, find_run


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Workspace:
    return Workspace(build_workspace(tmp_path_factory.mktemp("ws")))


@pytest.fixture(scope="module")
def collected(ws):
    return collect_runs(ws, ["fx"])


def test_collect_stage_has_one_row_per_expected_run_with_its_state(collected):
    runs, _ = collected
    assert len(runs) == 24 and runs["run_id"].is_unique
    state = by_readable_id(runs)["state"]
    for (model, precision, framework), kinds in LAYOUT.items():
        for seed, kind in zip(SEEDS, kinds, strict=True):
            expected = "pending" if kind == "missing" else kind
            assert state[f"digits-{model}-{precision}-s{seed}-{framework}"] == expected
    by_id = by_readable_id(runs)
    assert by_id.loc["digits-resnet50-fp32-s2-keras", "error"] == "RuntimeError: out of memory"
    assert "NaN" in by_id.loc["digits-resnet50-fp32-s3-keras", "error"]
    assert by_id.loc["digits-resnet50-amp-s3-keras", "note"] == "no run directory"
    assert pd.isna(by_id.loc["digits-resnet50-amp-s1-keras", "note"])  # has a dir, no status
    assert set(runs["stage"]) == {"fx"}


def test_collect_reads_best_epoch_test_metrics_and_steady_state_timing(ws, collected):
    runs, _ = collected
    row = by_readable_id(runs).loc["digits-mobilenetv2-fp32-s2-keras"]
    records = find_run(ws.runs_dir, "digits-mobilenetv2-fp32-s2-keras").epochs()
    assert row["state"] == "done" and row["epochs_done"] == EPOCHS
    assert row["best_epoch"] == EPOCHS
    assert row["best_val_accuracy"] == pytest.approx(max(r["val_accuracy"] for r in records))
    assert row["test_accuracy"] == ACC[("mobilenetv2", "fp32", "keras")][1]
    assert row["test_macro_f1"] == pytest.approx(row["test_accuracy"] - 0.01)
    times = [r["epoch_time_seconds"] for r in records]
    assert row["epoch_time_s"] == pytest.approx(sum(times[1:]) / (EPOCHS - 1))  # first left out
    assert row["epoch_time_s"] < times[0] / 2
    assert row["train_time_s"] == pytest.approx(sum(times))
    ips = [r["images_per_second"] for r in records]
    assert row["images_per_second"] == pytest.approx(sum(ips[1:]) / (EPOCHS - 1))
    assert (row["host"], row["device"]) == ("node-7", "cpu")
    assert row["wall_time_s"] >= 0
    # when and under what load it ran, so that runs sharing a host are not timed together
    assert row["finished_at"] - row["started_at"] == pytest.approx(row["wall_time_s"])
    assert row["load_avg_start"] >= 0 and row["load_avg_end"] >= 0


def test_collect_reads_top5_ece_and_per_class_accuracy(ws, collected):
    runs, _ = collected
    row = by_readable_id(runs).loc["digits-mobilenetv2-fp32-s2-keras"]
    test = find_run(ws.runs_dir, "digits-mobilenetv2-fp32-s2-keras").test_metrics()
    assert row["test_top5_accuracy"] == test["top5_accuracy"]
    assert row["test_ece"] == test["ece"]
    assert json.loads(row["test_per_class_accuracy"]) == test["per_class_accuracy"]
    csv = runs.loc[runs["state"] != "done", ["test_top5_accuracy", "test_ece"]]
    assert csv.isna().all(axis=None)  # no test.json: NaN, not 0


def test_old_test_json_without_new_fields_gives_nan_columns(tmp_path):
    ws = Workspace(build_workspace(tmp_path))
    run = find_run(ws.runs_dir, "digits-mobilenetv2-fp32-s1-pytorch")
    old = {k: v for k, v in run.test_metrics().items() if k in ("accuracy", "macro_f1", "loss")}
    run.test_path.write_text(json.dumps(old))
    row = collect_runs(ws, ["fx"])[0].set_index("run_id").loc[run.run_id]
    assert row["test_accuracy"] == old["accuracy"]
    assert pd.isna(row["test_top5_accuracy"]) and pd.isna(row["test_ece"])
    assert pd.isna(row["test_per_class_accuracy"])


def test_epochs_table_has_every_epoch_of_every_run_with_ids(collected):
    runs, epochs = collected
    assert len(epochs) == runs["epochs_done"].sum()
    assert {"run_id", "dataset", "model", "precision", "seed", "framework", "state"} <= set(epochs)
    diverged = by_readable_id(epochs).loc[["digits-resnet50-fp32-s3-keras"]]
    assert diverged["state"].eq("diverged").all() and diverged["train_loss"].isna().iloc[-1]


def test_without_stage_collect_lists_run_directories_only(ws):
    runs, _ = collect_runs(ws)
    missing = sum(k == "missing" for kinds in LAYOUT.values() for k in kinds)
    assert len(runs) == 24 - missing == 21
    assert "no run directory" not in set(runs["note"].dropna())


def test_resumed_epoch_keeps_the_last_record(tmp_path):
    path = tmp_path / "epochs.jsonl"
    for rec in ({"epoch": 1, "val_accuracy": 0.1}, {"epoch": 2, "val_accuracy": 0.2}):
        append_jsonl(path, rec)
    append_jsonl(path, {"epoch": 2, "val_accuracy": 0.3})  # the resumed run redid epoch 2
    frame = epochs_frame(RunDir(tmp_path).epochs())
    assert frame["epoch"].tolist() == [1, 2]
    assert frame["val_accuracy"].tolist() == [0.1, 0.3]


def test_collect_cli_writes_csv_and_parquet_that_agree(ws, run_cli):
    res = run_cli("collect", "--stage", "fx", "--workspace", ws.root)
    assert res.code == 0, res.err
    assert "24 runs" in res.out and "1 failed" in res.out and "4 pending" in res.out
    csv = pd.read_csv(ws.results_dir / "runs.csv")
    parquet = pd.read_parquet(ws.results_dir / "runs.parquet")
    assert csv["run_id"].tolist() == parquet["run_id"].tolist()
    assert csv["test_accuracy"].equals(parquet["test_accuracy"])
    assert len(pd.read_parquet(ws.results_dir / "epochs.parquet")) == parquet["epochs_done"].sum()


def test_unknown_stage_and_missing_results_are_one_line_errors(tmp_path, run_cli):
    res = run_cli("collect", "--stage", "nope", "--workspace", tmp_path)
    assert res.code == 2 and "unknown stage 'nope'" in res.err
    res = run_cli("analyze", "--workspace", tmp_path)
    assert res.code == 2 and "fwbench collect" in res.err and "Traceback" not in res.err


def test_running_run_whose_process_is_gone_is_interrupted(tmp_path):
    ws = Workspace(build_workspace(tmp_path))
    run = find_run(ws.runs_dir, "digits-resnet50-amp-s2-keras")
    run.set_status("running")
    status = run.read_status()
    status["pid"] = 2**22 + 1  # above Linux's pid_max: no such process
    run.status_path.write_text(json.dumps(status))
    runs, _ = collect_runs(ws, ["fx"])
    assert runs.set_index("run_id").loc[run.run_id, "state"] == "interrupted"


def test_stage_with_changed_settings_collects_only_runs_with_its_settings(tmp_path):
    ws = Workspace(build_workspace(tmp_path))
    matrix = ws.configs_dir / "experiment_matrix.yaml"
    matrix.write_text(matrix.read_text().replace("epochs_override: 4", "epochs_override: 6"))
    runs, _ = collect_runs(ws, ["fx"])
    # the 4-epoch runs on disk are another stage's numbers now: none is collected as this one's
    assert len(runs) == 24 and set(runs["state"]) == {"pending"}
    assert set(runs["note"]) == {"no run directory"} and set(runs["epochs"]) == {6}


def test_legacy_run_dir_with_same_settings_is_flagged(tmp_path):
    ws = Workspace(build_workspace(tmp_path))
    run = find_run(ws.runs_dir, "digits-mobilenetv2-fp32-s1-keras")
    spec = run.read_spec()
    legacy = run.path.rename(ws.runs_dir / spec.readable_id)  # an id from before settings hashes
    runs, _ = collect_runs(ws, ["fx"])
    assert by_readable_id(runs).loc[spec.readable_id, "note"] == "no run directory"
    assert RunDir(legacy).read_spec() == spec
