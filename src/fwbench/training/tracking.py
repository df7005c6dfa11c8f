"""Tracking sinks: TensorBoard event files for every run, MLflow when asked.

Both log the same things, named the same way, each series on one axis that its section says:

- section ``train_step`` (x = optimizer step): ``train_step/loss``, ``train_step/lr`` (the one LR
  series: the schedule changes it every step);
- sections ``train``, ``val``, ``perf`` (x = epoch number): the fields of the ``epochs.jsonl``
  line (``train/loss``, ``train/accuracy``, ``val/loss``, ``val/accuracy``, ``val/macro_f1``,
  ``perf/images_per_second``, ``perf/data_time_seconds``, ``perf/epoch_time_seconds``);
- section ``test`` (x = the best epoch, whose weights were tested): ``test/accuracy`` (top-1),
  ``test/top5_accuracy``, ``test/macro_f1``, ``test/ece``, ``test/loss``;
- the run's settings as hyperparameters (dataset, model, precision, seed, framework, variant and
  every train-config key, dotted). MLflow also keeps ``test.json`` and the best checkpoint as
  artifacts of a finished run.

TensorBoard files go to ``<run_dir>/tb/`` (``tensorboard --logdir runs/`` shows PyTorch and
Keras runs side by side). MLflow goes to ``tracking_uri``, by default a SQLite store in
``<workspace>/mlruns/`` that needs no server (MLflow 3 keeps its plain-file store only in
maintenance mode). The MLflow run id is kept in ``<run_dir>/tracking.json`` so a resumed run
continues the same MLflow run. The libraries are imported only when a run starts; MLflow's own
INFO lines (database set-up) stay off the console.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from fwbench.core.fileio import write_json
from fwbench.core.paths import Workspace
from fwbench.record.runs import RunDir, RunSpec, identity_fields
from fwbench.training.sinks import Sink

# epochs.jsonl field -> metric name (the same in TensorBoard and MLflow)
EPOCH_METRICS: dict[str, str] = {
    "train_loss": "train/loss",
    "train_accuracy": "train/accuracy",
    "val_loss": "val/loss",
    "val_accuracy": "val/accuracy",
    "val_macro_f1": "val/macro_f1",
    "images_per_second": "perf/images_per_second",
    "data_time_seconds": "perf/data_time_seconds",
    "epoch_time_seconds": "perf/epoch_time_seconds",
}
STEP_LOSS, STEP_LR = "train_step/loss", "train_step/lr"
TEST_METRICS = ("accuracy", "top5_accuracy", "macro_f1", "ece", "loss")


def _test_values(test: dict[str, Any]) -> dict[str, float]:
    """``test/<metric>`` for each test metric the run wrote (top-5 only with > 5 classes)."""
    return {
        f"test/{m}": float(test[m]) for m in TEST_METRICS if isinstance(test.get(m), int | float)
    }


def hparams(spec: RunSpec) -> dict[str, Any]:
    """The run's settings as flat hyperparameters (scalars only; lists and maps as JSON text)."""
    fields = identity_fields(spec)
    flat = {k: fields[k] for k in ("dataset", "model", "precision", "seed", "framework")}
    flat |= {"variant": spec.variant, "epochs": spec.epochs, "subset": spec.subset or 0}
    cfg = fields["train_config"]
    for section in ("optimizer", "lr", "training"):
        flat |= {f"{section}.{k}": v for k, v in cfg[section].items()}
    flat["config_hash"] = spec.config_hash
    scalar = (bool, int, float, str)
    return {k: v if isinstance(v, scalar) else json.dumps(v) for k, v in flat.items()}


class TensorBoardSink(Sink):
    """Event files under ``<run_dir>/tb`` in TensorBoard's record format, written with its own
    protos and ``RecordWriter``. Not its ``EventFileWriter``: that imports TensorFlow whenever it
    is installed, which would load a second framework into a PyTorch run."""

    name = "TensorBoard"

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir

    def start(self, spec: RunSpec, steps_per_epoch: int, first_epoch: int) -> None:
        from tensorboard.compat.proto.event_pb2 import Event
        from tensorboard.compat.proto.summary_pb2 import Summary
        from tensorboard.plugins.hparams import summary_v2
        from tensorboard.summary.writer.record_writer import RecordWriter

        self.Event, self.Summary = Event, Summary
        self.log_dir.mkdir(parents=True, exist_ok=True)
        # one file per process (a resumed run adds one), named as TensorBoard's writers name them
        name = f"events.out.tfevents.{time.time():.0f}.{socket.gethostname()}.{os.getpid()}"
        self.writer = RecordWriter(open(self.log_dir / name, "wb"))  # noqa: SIM115 (closed in close)
        self.writer.write(
            Event(wall_time=time.time(), file_version="brain.Event:2").SerializeToString()
        )
        if first_epoch == 0:
            names = [*EPOCH_METRICS.values(), *(f"test/{m}" for m in TEST_METRICS)]
            metrics = [summary_v2.Metric(n) for n in names]
            self._write(summary_v2.hparams_config_pb(hparams=[], metrics=metrics), 0)
            self._write(summary_v2.hparams_pb(hparams(spec)), 0)

    def _write(self, summary: Any, step: int) -> None:
        event = self.Event(summary=summary, step=step, wall_time=time.time())
        self.writer.write(event.SerializeToString())

    def _scalars(self, values: dict[str, float], step: int) -> None:
        summary = self.Summary(
            value=[self.Summary.Value(tag=k, simple_value=float(v)) for k, v in values.items()]
        )
        self._write(summary, step)

    def step(self, step: int, epoch: int, loss: float, lr: float, images: int) -> None:
        self._scalars({STEP_LOSS: loss, STEP_LR: lr}, step)

    def epoch(self, record: dict[str, Any]) -> None:
        self._scalars({name: record[k] for k, name in EPOCH_METRICS.items()}, record["epoch"])
        self.writer.flush()

    def close(self, state: str, test: dict[str, Any] | None) -> None:
        if test:
            self._scalars(_test_values(test), test["best_epoch"])
        self.writer.close()


# Per request at most 4 s, no retry: an unanswering server is given up within 10 s in all.
HTTP_LIMITS = {
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "4",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "0",
}


def default_mlflow_uri(ws: Workspace) -> str:
    """The embedded store: ``sqlite:///<workspace>/mlruns/mlflow.db``."""
    return f"sqlite:///{ws.root / 'mlruns' / 'mlflow.db'}"


class MlflowSink(Sink):
    """One MLflow run per fwbench run, in the experiment named after the stage (or ``fwbench``)."""

    name = "MLflow"

    def __init__(self, run_dir: RunDir, uri: str, artifacts: Path | None = None):
        self.run_dir, self.uri, self.artifacts = run_dir, uri, artifacts
        self.pending: list[Any] = []

    @property
    def state_path(self) -> Path:
        return self.run_dir.path / "tracking.json"

    def start(self, spec: RunSpec, steps_per_epoch: int, first_epoch: int) -> None:
        import logging

        from mlflow import MlflowClient
        from mlflow.entities import Metric, Param

        for logger in ("mlflow", "alembic"):  # "Creating initial MLflow database tables..."
            logging.getLogger(logger).setLevel(logging.WARNING)

        self.Metric = Metric
        if self.uri.startswith("sqlite:///"):
            Path(self.uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        # a server that does not answer costs seconds at the start, not minutes of retries
        # (MLflow's defaults: 120 s per request, 7 retries with back-off); the user's own
        # MLFLOW_HTTP_REQUEST_* settings win
        for key, value in HTTP_LIMITS.items():
            os.environ.setdefault(key, value)
        self.client = MlflowClient(tracking_uri=self.uri)
        known = _read(self.state_path)
        if known.get("mlflow_run_id") and known.get("mlflow_uri") == self.uri:
            self.run_id = known["mlflow_run_id"]
            self.client.update_run(self.run_id, status="RUNNING")
            return
        name = spec.stage or "fwbench"
        found = self.client.get_experiment_by_name(name)
        location = None if self.artifacts is None else self.artifacts.as_uri()
        experiment = found.experiment_id if found else self.client.create_experiment(name, location)
        tags = {"fwbench.run_id": spec.run_id, "fwbench.framework": spec.framework}
        run = self.client.create_run(experiment, run_name=spec.run_id, tags=tags)
        self.run_id = run.info.run_id
        params = [Param(k, str(v)) for k, v in hparams(spec).items()]
        self.client.log_batch(self.run_id, params=params)
        write_json(self.state_path, {"mlflow_uri": self.uri, "mlflow_run_id": self.run_id})

    def _metric(self, key: str, value: float, step: int) -> None:
        self.pending.append(self.Metric(key, float(value), int(time.time() * 1000), step))

    def _flush(self) -> None:
        while self.pending:  # MLflow takes at most 1000 metrics per batch
            self.client.log_batch(self.run_id, metrics=self.pending[:1000])
            self.pending = self.pending[1000:]

    def step(self, step: int, epoch: int, loss: float, lr: float, images: int) -> None:
        self._metric(STEP_LOSS, loss, step)
        self._metric(STEP_LR, lr, step)

    def epoch(self, record: dict[str, Any]) -> None:
        for k, name in EPOCH_METRICS.items():
            self._metric(name, record[k], record["epoch"])
        self._flush()  # once per epoch: a per-step round trip would slow training

    def close(self, state: str, test: dict[str, Any] | None) -> None:
        if test:
            for name, value in _test_values(test).items():
                self._metric(name, value, test["best_epoch"])
        self._flush()
        if state == "done" and test:
            self.client.log_artifact(self.run_id, str(self.run_dir.test_path))
            best = self.run_dir.path / str(test.get("checkpoint", ""))
            if test.get("checkpoint") and best.exists():
                self.client.log_artifact(self.run_id, str(best), "checkpoints")
        status = {"done": "FINISHED", "diverged": "FAILED"}.get(state, "FAILED")
        self.client.set_terminated(self.run_id, status=status)


def _read(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def tracking_sinks(run_dir: RunDir, ws: Workspace, spec: RunSpec) -> list[Sink]:
    """TensorBoard always; MLflow when the spec's train config says ``tracking: mlflow``."""
    sinks: list[Sink] = [TensorBoardSink(run_dir.path / "tb")]
    cfg = spec.train_config
    if cfg.tracking == "mlflow":
        uri = cfg.tracking_uri or default_mlflow_uri(ws)
        local = None if cfg.tracking_uri else ws.root / "mlruns" / "artifacts"
        sinks.append(MlflowSink(run_dir, uri, local))
    return sinks
