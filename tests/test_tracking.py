"""Tracking: the epoch line on a console without a TTY, TensorBoard files and MLflow, read back.

Each arm trains one tiny run (synthetic, 90 images, 2 epochs) through the real command line with
``--tracking mlflow``; TensorBoard's ``EventAccumulator`` and ``mlflow.MlflowClient`` must give
back exactly the numbers in ``epochs.jsonl`` (TensorBoard stores float32).
"""

from __future__ import annotations

import re
import sys

import numpy as np
import pytest

from fwbench.record.runs import RunDir
from fwbench.training.console import epoch_line
from fwbench.training.sinks import Sink, Sinks
from fwbench.training.tracking import (
    EPOCH_METRICS,
    STEP_LOSS,
    STEP_LR,
    TEST_METRICS,
    default_mlflow_uri,
)
from runfixtures import find_run
from test_training_runs import fwbench

ARMS = ("pytorch", "keras")
EPOCHS = 2
LINE = re.compile(
    r"^(pytorch|keras) epoch (\d)/2  train loss \d+\.\d{4} acc \d\.\d{4}  "
    r"val loss \d+\.\d{4} acc \d\.\d{4}  \d+ img/s  \d+\.\d s  ETA \d+:\d\d$",
    flags=re.M,
)


@pytest.fixture(scope="module")
def trained(synthetic_ws):
    out = {}
    for arm in ARMS:
        p = fwbench(
            "train", "--framework", arm, "--dataset", "synthetic", "--model", "mobilenetv2",
            "--subset", "90", "--batch-size", "30", "--epochs", str(EPOCHS), "--tracking",
            "mlflow", "--set", "lr.warmup_epochs=0.5", "--num-workers", "0", ws=synthetic_ws,
        )  # fmt: skip
        rd = find_run(synthetic_ws.runs_dir, f"synthetic-mobilenetv2-fp32-s42-{arm}")
        out[arm] = (rd, p.stderr)
    return synthetic_ws, out


@pytest.mark.slow
@pytest.mark.parametrize("arm", ARMS)
def test_each_epoch_leaves_one_line_without_a_tty(trained, arm):
    _, runs = trained
    rd, stderr = runs[arm]
    lines = LINE.findall(stderr)
    assert lines == [(arm, "1"), (arm, "2")]
    records = rd.epochs()
    assert f"val loss {records[-1]['val_loss']:.4f} acc {records[-1]['val_accuracy']:.4f}" in stderr
    assert "absl::InitializeLog" not in stderr and "oneDNN" not in stderr  # TF noise is dropped
    spec = rd.read_spec()
    assert "lr.warmup_epochs=0.5" in spec.overrides and "training.batch_size=30" in spec.overrides


@pytest.mark.slow
@pytest.mark.parametrize("arm", ARMS)
def test_tensorboard_events_equal_epochs_jsonl(trained, arm):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    _, runs = trained
    rd = runs[arm][0]
    acc = EventAccumulator(str(rd.path / "tb"))
    acc.Reload()
    records = rd.epochs()
    for field, tag in EPOCH_METRICS.items():
        events = acc.Scalars(tag)
        assert [e.step for e in events] == [r["epoch"] for r in records]
        assert [e.value for e in events] == [np.float32(r[field]) for r in records], tag
    steps = acc.Scalars(STEP_LOSS)
    spec, per_epoch = rd.read_spec(), 90 // 30
    assert [e.step for e in steps] == list(range(EPOCHS * per_epoch))
    lrs = [e.value for e in acc.Scalars(STEP_LR)]
    assert lrs[-1] == np.float32(records[-1]["learning_rate"])  # the epoch's last step's LR
    assert "_hparams_/session_start_info" in acc.PluginTagToContent("hparams")
    assert spec.framework == arm and "tensorflow" not in _imported(rd, arm)


def _imported(rd: RunDir, arm: str) -> list[str]:
    import json

    return json.loads(rd.env_path.read_text())["frameworks_imported"] if arm == "pytorch" else []


@pytest.mark.slow
@pytest.mark.parametrize("arm", ARMS)
def test_mlflow_metrics_equal_epochs_jsonl(trained, arm):
    from mlflow import MlflowClient

    ws, runs = trained
    rd = runs[arm][0]
    client = MlflowClient(tracking_uri=default_mlflow_uri(ws))
    (run,) = client.search_runs(
        [client.get_experiment_by_name("fwbench").experiment_id],
        filter_string=f"tags.`fwbench.run_id` = '{rd.run_id}'",
    )
    assert run.info.status == "FINISHED"
    assert run.data.params["lr.warmup_epochs"] == "0.5" and run.data.params["framework"] == arm
    records = rd.epochs()
    for field, name in EPOCH_METRICS.items():
        history = sorted(client.get_metric_history(run.info.run_id, name), key=lambda m: m.step)
        assert [(m.step, m.value) for m in history] == [(r["epoch"], r[field]) for r in records]
    test = rd.test_metrics()
    assert run.data.metrics["test/accuracy"] == test["accuracy"]
    assert len(client.get_metric_history(run.info.run_id, STEP_LOSS)) == EPOCHS * 3


class _Broken(Sink):
    name = "Broken"

    def epoch(self, record):
        raise ConnectionError("server down\ntraceback lines")


class _Recorder(Sink):
    def __init__(self):
        self.records = []

    def epoch(self, record):
        self.records.append(record)


def test_a_failing_sink_is_one_warning_and_the_others_go_on():
    warnings, recorder = [], _Recorder()
    sinks = Sinks([_Broken(), recorder], warn=warnings.append)
    for epoch in (1, 2):
        sinks.epoch({"epoch": epoch})
    assert warnings == ["warning: Broken is off for this run (server down); training goes on"]
    assert recorder.records == [{"epoch": 1}, {"epoch": 2}]


def test_unavailable_mlflow_server_does_not_break_a_run(tmp_path, monkeypatch):
    from fwbench.training.tracking import MlflowSink

    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if not installed
    warnings = []
    sinks = Sinks([MlflowSink(RunDir(tmp_path), "http://127.0.0.1:9")], warn=warnings.append)
    sinks.start(None, 3, 0)
    sinks.epoch({"epoch": 1})
    sinks.close("done", None)
    assert len(warnings) == 1 and warnings[0].startswith("warning: MLflow is off for this run")


def test_epoch_line_rounds_for_reading():
    from types import SimpleNamespace

    spec = SimpleNamespace(framework="keras", epochs=10)
    record = {
        "epoch": 3, "train_loss": 1.23456, "train_accuracy": 0.5, "val_loss": 2.0,
        "val_accuracy": 0.61234, "images_per_second": 1234.56, "epoch_time_seconds": 12.34,
    }  # fmt: skip
    assert epoch_line(spec, record, 86.0) == (
        "keras epoch 3/10  train loss 1.2346 acc 0.5000  val loss 2.0000 acc 0.6123  "
        "1235 img/s  12.3 s  ETA 1:26"
    )


@pytest.mark.slow
def test_both_sinks_hold_the_test_metrics_one_lr_series_and_mlflow_keeps_the_artifacts(
    tmp_path, capfd
):
    """The sinks alone (no training): what a finished run hands them comes back from
    TensorBoard and MLflow, and MLflow's own set-up lines stay off the console."""
    from mlflow import MlflowClient
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from fwbench.training.tracking import MlflowSink, TensorBoardSink
    from specs import digits_spec

    spec = digits_spec(epochs_override=1)
    rd = RunDir(tmp_path / "run")
    rd.write_spec(spec)
    (rd.checkpoints).mkdir()
    (rd.checkpoints / "best.pt").write_bytes(b"weights")
    test = {"accuracy": 0.9, "top5_accuracy": 0.99, "macro_f1": 0.8, "ece": 0.05, "loss": 0.3,
            "best_epoch": 1, "checkpoint": "checkpoints/best.pt"}  # fmt: skip
    rd.test_path.write_text(__import__("json").dumps(test))
    uri = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    sinks = Sinks([TensorBoardSink(rd.path / "tb"), MlflowSink(rd, uri, tmp_path / "artifacts")])
    sinks.start(spec, 2, 0)
    sinks.step(0, 0, 2.0, 0.0, 16)
    sinks.step(1, 0, 1.5, 0.05, 16)
    record = {
        "epoch": 1, "train_loss": 1.7, "train_accuracy": 0.4, "val_loss": 1.2,
        "val_accuracy": 0.6, "val_macro_f1": 0.55, "epoch_time_seconds": 3.0,
        "learning_rate": 0.05, "images_per_second": 10.0, "data_time_seconds": 0.1,
    }  # fmt: skip
    sinks.epoch(record)
    sinks.close("done", test)
    assert "MLflow database tables" not in capfd.readouterr().err
    tb = EventAccumulator(str(rd.path / "tb"))
    tb.Reload()
    tags = set(tb.Tags()["scalars"])
    want = {f"test/{m}": v for m, v in test.items() if m in TEST_METRICS}
    assert {t for t in tags if "lr" in t or "learning_rate" in t} == {STEP_LR}
    assert {t: tb.Scalars(t)[0].value for t in want} == pytest.approx(want)
    assert [(e.step, e.value) for e in tb.Scalars("val/accuracy")] == [(1, pytest.approx(0.6))]
    client = MlflowClient(tracking_uri=uri)
    (run,) = client.search_runs([client.get_experiment_by_name("fwbench").experiment_id])
    assert {k: v for k, v in run.data.metrics.items() if k.startswith("test/")} == want
    assert not any("learning_rate" in k for k in run.data.metrics)
    assert [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, STEP_LR)] == [
        (0, 0.0),
        (1, 0.05),
    ]
    names = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert names == {"test.json", "checkpoints"}
    assert [a.path for a in client.list_artifacts(run.info.run_id, "checkpoints")] == [
        "checkpoints/best.pt"
    ]
