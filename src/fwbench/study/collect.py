"""Run directories -> one table per run and one per epoch (``fwbench collect``).

Every run the matrix expects is a row, found or not: a missing directory or status is
``pending``, and failed, diverged and running runs keep their state. Nothing is dropped;
the statistics decide later which rows count.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fwbench.core.errors import FwbenchError
from fwbench.core.fileio import StagedWrites
from fwbench.core.paths import Workspace
from fwbench.record.check import corruption
from fwbench.record.runs import EPOCH_FIELDS, RunDir, RunSpec, identity_fields
from fwbench.study.matrix import run_state, stage_runs
from fwbench.study.runindex import find_run_dirs

# "settings": the swept train-config keys that set this run apart from the others collected
# ("lr.base_lr=0.05"; empty when nothing is swept); each swept key is also a column of its own.
ID_COLUMNS = [
    "run_id", "stage", "dataset", "model", "precision", "seed", "framework", "variant", "compile",
    "init", "perturbation",
    "settings",
]  # fmt: skip
RUN_COLUMNS = [
    *ID_COLUMNS,
    "epochs",
    "input_size",
    "subset",
    "eval_subset",
    "config_hash",
    "state",
    "error",
    "note",
    "epochs_done",
    "best_epoch",
    "best_val_accuracy",
    "test_accuracy",
    "test_macro_f1",
    "test_top5_accuracy",
    "test_ece",
    "test_loss",
    "epoch_time_s",
    "images_per_second",
    "data_time_s",
    "train_time_s",
    "wall_time_s",
    "started_at",
    "finished_at",
    "load_avg_start",
    "load_avg_end",
    "host",
    "cpu_model",
    "device",
    "amp_dtype",
    "execution",
    "deterministic",
    "determinism",
    "test_per_class_accuracy",
    "run_dir",
]
RUNS_CSV, RUNS_PARQUET, EPOCHS_PARQUET = "runs.csv", "runs.parquet", "epochs.parquet"


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def epochs_frame(records: list[dict[str, Any]]) -> pd.DataFrame:
    """One run's epoch records as a frame sorted by epoch; a resumed epoch keeps its last line."""
    frame = pd.DataFrame.from_records(records)
    for field in EPOCH_FIELDS:
        if field not in frame:
            frame[field] = np.nan
    if frame.empty:
        return frame[list(EPOCH_FIELDS)]
    frame[list(EPOCH_FIELDS)] = frame[list(EPOCH_FIELDS)].apply(pd.to_numeric, errors="coerce")
    frame = frame.drop_duplicates("epoch", keep="last").sort_values("epoch", kind="stable")
    return frame.reset_index(drop=True)


def _steady(values: pd.Series) -> float:
    # The first epoch carries warm-up (graph tracing, compilation, caches): leave it out of
    # speed means whenever a later epoch exists.
    values = values.dropna()
    if len(values) > 1:
        values = values.iloc[1:]
    return float(values.mean()) if len(values) else np.nan


def _scalar(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return json.dumps(value, sort_keys=True, default=str)


def spec_fields(spec: RunSpec) -> dict[str, Any]:
    """The identifying columns of one run."""
    return {
        "run_id": spec.run_id,
        "stage": spec.stage,
        "dataset": spec.dataset,
        "model": spec.model,
        "precision": spec.precision,
        "seed": spec.seed,
        "framework": spec.framework,
        "variant": spec.variant,
        "compile": spec.compile,
        "init": spec.init,
        "perturbation": spec.perturbation,
        "settings": "",
        "epochs": spec.epochs,
        "input_size": spec.input_size,
        "subset": spec.subset,
        "eval_subset": spec.eval_subset,
        "config_hash": spec.config_hash,
    }


def run_row(run: RunDir, spec: RunSpec, epochs: pd.DataFrame, root: Path) -> dict[str, Any]:
    """The summary row of one run: identity, state, best epoch, test metrics, timing, host."""
    state = run_state(run) if run.path.is_dir() else "pending"
    if state == "corrupt":  # its recorded numbers are not trusted: identity and reason only
        return _corrupt_row(run, root, spec)
    status = run.read_status() if run.path.is_dir() else {"state": "pending"}
    test = run.test_metrics() or {}
    env = _read_json(run.env_path)
    row = {col: None for col in RUN_COLUMNS} | spec_fields(spec)
    row["state"] = state
    row["error"] = status.get("error")
    row["run_dir"] = str(run.path.relative_to(root)) if run.path.is_relative_to(root) else None
    row["epochs_done"] = len(epochs)
    if len(epochs) and epochs["val_accuracy"].notna().any():
        best = epochs.loc[epochs["val_accuracy"].idxmax()]
        best_epoch = test.get("best_epoch", best["epoch"])
        at_best = epochs[epochs["epoch"] == best_epoch]
        row["best_epoch"] = int(best_epoch)
        source = at_best.iloc[0] if len(at_best) else best
        row["best_val_accuracy"] = float(test.get("best_val_accuracy", source["val_accuracy"]))
    elif "best_epoch" in test:
        row["best_epoch"] = int(test["best_epoch"])
    row["test_accuracy"] = test.get("accuracy")
    row["test_macro_f1"] = test.get("macro_f1")
    row["test_top5_accuracy"] = test.get("top5_accuracy")
    row["test_ece"] = test.get("ece")
    per_class = test.get("per_class_accuracy")
    row["test_per_class_accuracy"] = json.dumps(per_class) if isinstance(per_class, list) else None
    row["test_loss"] = test.get("loss")
    row["epoch_time_s"] = _steady(epochs["epoch_time_seconds"])
    row["images_per_second"] = _steady(epochs["images_per_second"])
    row["data_time_s"] = _steady(epochs["data_time_seconds"])
    row["train_time_s"] = float(epochs["epoch_time_seconds"].sum()) if len(epochs) else np.nan
    started, finished = status.get("started_at"), status.get("finished_at")
    if isinstance(started, int | float) and isinstance(finished, int | float):
        row["wall_time_s"] = float(finished - started)
    # when and under what load it ran: runs overlapping on one host are not timed together
    row["started_at"], row["finished_at"] = started, finished
    row["load_avg_start"] = status.get("load_avg_start")
    row["load_avg_end"] = status.get("load_avg_end")
    row["host"] = env.get("hostname") or status.get("host")
    row["cpu_model"] = env.get("cpu_model")
    # training writes the backend's facts under "run"; a flat env.json is read as well
    facts = env.get("run") if isinstance(env.get("run"), dict) else {}
    row["device"] = _scalar(facts.get("device", env.get("device")))
    row["amp_dtype"] = _scalar(facts.get("amp_dtype", env.get("amp_dtype")))
    row["execution"] = _scalar(facts.get("execution"))
    # in effect, as the arm read it back (``registry.determinism``)
    row["deterministic"] = facts.get("deterministic")
    row["determinism"] = _scalar(facts.get("determinism"))
    return row


def _corrupt_row(
    run: RunDir, root: Path, spec: RunSpec | None = None, reason: str | None = None
) -> dict[str, Any]:
    """The row of a corrupt run: its identity (from the spec, when readable), state and why;
    none of its recorded numbers (they count in no statistic)."""
    trusted = spec is not None and spec.run_id == run.run_id  # else only its directory's name
    ident = spec_fields(spec) if trusted else {"run_id": run.run_id}
    row = {col: None for col in RUN_COLUMNS} | ident | {"state": "corrupt"}
    row["note"] = f"corrupt: {reason or corruption(run)}; `fwbench run` repairs it"
    row["run_dir"] = str(run.path.relative_to(root)) if run.path.is_relative_to(root) else None
    return row


def _epoch_rows(spec: RunSpec, state: str, epochs: pd.DataFrame, settings: str) -> pd.DataFrame:
    ids = {k: v for k, v in spec_fields(spec).items() if k in ID_COLUMNS} | {"settings": settings}
    return epochs.assign(**ids, state=state)[[*ID_COLUMNS, "state", *EPOCH_FIELDS]]


def _mismatch(expected: RunSpec, on_disk: RunSpec | None) -> str | None:
    """Why the run directory does not hold the run the matrix expects, or None."""
    if on_disk is None:
        return "no run directory"
    want, have = identity_fields(expected), identity_fields(on_disk)
    diff = sorted(k for k in want if want[k] != have.get(k))
    return f"spec differs from the matrix in: {', '.join(diff)}" if diff else None


def _flat(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            out |= _flat(value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = value
    return out


def _effective(spec: RunSpec) -> dict[str, Any]:
    flat = _flat(identity_fields(spec)["train_config"])
    flat = {k: v for k, v in flat.items() if not k.startswith(("epochs.", "input_size."))}
    return flat | {"epochs": spec.epochs, "input_size": spec.input_size}


def swept_settings(specs: list[RunSpec]) -> tuple[list[str], list[dict[str, Any]]]:
    """The train-config keys whose values differ between ``specs``, and each spec's values.

    Keys are dotted paths (``lr.base_lr``); settings outside the hash (workers, tracking) never
    count as swept. Per-dataset tables of the config (``epochs.digits``) count as what the run
    really used: ``epochs`` (after ``epochs_override``) and ``input_size``.
    """
    flats = [_effective(s) for s in specs]
    keys = sorted({k for f in flats for k in f})
    swept = [k for k in keys if len({json.dumps(f.get(k), sort_keys=True) for f in flats}) > 1]
    return swept, [{k: f.get(k) for k in swept} for f in flats]


def _duplicates(runs, root: Path) -> dict[Path, str]:
    """``{directory: why}`` for every directory holding a run another directory holds too (the
    one at ``root/<run id>``, else the first found, is kept): no run counts twice."""
    holders: dict[str, list[Path]] = {}
    for run, spec in runs:
        if spec is not None:
            holders.setdefault(spec.run_id, []).append(run.path)
    out = {}
    for run_id, paths in holders.items():
        keep = root / run_id if root / run_id in paths else paths[0]
        for p in paths:
            if p != keep:
                out[p] = f"holds run {run_id}, which {keep.name} holds too (a copy)"
    return out


def collect_runs(
    ws: Workspace, stages: list[str] | None = None, matrix_path: Path | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(runs, epochs)`` tables for the workspace: all run dirs, or the given stages' runs.

    With ``stages``, the rows are exactly the matrix's expected runs of those stages (missing
    ones ``pending``): a run id carries its settings hash, so a directory left by the stage's
    earlier settings is another run and is not collected as this stage's.
    """
    every: list[tuple[RunDir, RunSpec | None]] = []
    for run in find_run_dirs(ws.runs_dir):
        try:
            every.append((run, run.read_spec()))
        except FwbenchError:  # a corrupt run: still a row, never silently dropped
            every.append((run, None))
    duplicates = _duplicates(every, ws.runs_dir)
    found = {run.run_id: (run, spec) for run, spec in every if run.path not in duplicates}
    planned: list[tuple[RunDir, RunSpec | None, str | None]] = []
    if stages:
        expected: dict[str, RunSpec] = {}  # a run two stages share: one row
        for specs in stage_runs(ws, stages, matrix=matrix_path).values():
            expected |= {s.run_id: s for s in specs if s.run_id not in expected}
        for spec in expected.values():
            run, on_disk = found.pop(spec.run_id, (RunDir(ws.runs_dir / spec.run_id), None))
            # a directory holding another run (a copy) is shown as the run the matrix expects
            same = on_disk is not None and on_disk.run_id == spec.run_id
            planned.append((run, on_disk if same else spec, _mismatch(spec, on_disk)))
    else:
        planned = [(run, spec, None) for run, spec in every]
    rows, epoch_tables = [], []
    swept, values = swept_settings([spec for _, spec, _ in planned if spec is not None])
    settings_of = iter(values)
    for run, spec, note in planned:
        if spec is None:
            rows.append(_corrupt_row(run, ws.root))
            continue
        settings = next(settings_of)
        epochs = epochs_frame(run.epochs())
        row = run_row(run, spec, epochs, ws.root) | settings
        if row["state"] != "corrupt" and run.path in duplicates:
            row = _corrupt_row(run, ws.root, spec, duplicates[run.path]) | settings
        row["settings"] = ", ".join(f"{k}={_scalar(v)}" for k, v in settings.items())
        row["note"] = "; ".join(n for n in (note, row["note"]) if n) or None
        rows.append(row)
        if row["state"] == "corrupt":  # its epochs count nowhere either
            continue
        if len(epochs):
            epoch_tables.append(_epoch_rows(spec, row["state"], epochs, row["settings"]))
    extra = [k for k in swept if k not in RUN_COLUMNS]
    runs = pd.DataFrame.from_records(rows, columns=[*RUN_COLUMNS, *extra])
    runs = _typed(runs).sort_values(ID_COLUMNS[2:7], kind="stable").reset_index(drop=True)
    empty = pd.DataFrame(columns=[*ID_COLUMNS, "state", *EPOCH_FIELDS])
    epochs_all = pd.concat(epoch_tables, ignore_index=True) if epoch_tables else empty
    return runs, epochs_all


def _typed(runs: pd.DataFrame) -> pd.DataFrame:
    for col in (
        "seed",
        "epochs",
        "input_size",
        "subset",
        "eval_subset",
        "epochs_done",
        "best_epoch",
    ):
        runs[col] = pd.to_numeric(runs[col]).astype("Int64")
    floats = RUN_COLUMNS[RUN_COLUMNS.index("best_val_accuracy") : RUN_COLUMNS.index("host")]
    for col in floats:
        runs[col] = pd.to_numeric(runs[col]).astype("float64")
    strings = ("stage", "settings", "error", "note", "host", "cpu_model", "device", "amp_dtype")
    for col in (*strings, "execution", "determinism", "compile", "run_dir"):
        runs[col] = runs[col].astype("string")
    runs["test_per_class_accuracy"] = runs["test_per_class_accuracy"].astype("string")
    runs["deterministic"] = runs["deterministic"].astype("boolean")
    return runs


def confusion_matrix_sums(root: Path, runs: pd.DataFrame, group: list[str]) -> dict:
    """Per ``group`` key: ``(sum of the test confusion matrices, runs summed)`` of finished runs.

    Read from each run's ``test.json`` (``run_dir`` relative to ``root``; rows: true class);
    runs whose matrix is missing or of another shape than the group's first are left out.
    """
    sums: dict[tuple, tuple[np.ndarray, int]] = {}
    done = runs[(runs["state"] == "done") & runs["run_dir"].notna()]
    for key, rows in done.groupby(group, sort=True, dropna=False):
        for rel in rows["run_dir"]:
            matrix = (RunDir(root / rel).test_metrics() or {}).get("confusion_matrix")
            if not isinstance(matrix, list) or not matrix:
                continue
            m = np.asarray(matrix, dtype="float64")
            if key not in sums:
                sums[key] = (m, 1)
            elif sums[key][0].shape == m.shape:
                sums[key] = (sums[key][0] + m, sums[key][1] + 1)
    return sums


def write_results(ws: Workspace, runs: pd.DataFrame, epochs: pd.DataFrame) -> list[Path]:
    """Write ``results/runs.csv``, ``runs.parquet`` and ``epochs.parquet`` atomically."""
    out = ws.results_dir
    with StagedWrites() as staged:  # all three tables or none
        staged.add(out / RUNS_CSV, lambda p: runs.to_csv(p, index=False))
        staged.add(out / RUNS_PARQUET, lambda p: runs.to_parquet(p, index=False))
        staged.add(out / EPOCHS_PARQUET, lambda p: epochs.to_parquet(p, index=False))
        staged.commit()
    return [out / RUNS_CSV, out / RUNS_PARQUET, out / EPOCHS_PARQUET]


def load_results(ws: Workspace) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The collected ``(runs, epochs)`` tables; a user error if ``fwbench collect`` has not run."""
    runs_path = ws.results_dir / RUNS_PARQUET
    if not runs_path.is_file():
        raise FwbenchError(
            "no collected results", path=runs_path, fix="run `fwbench collect` first"
        )
    epochs_path = ws.results_dir / EPOCHS_PARQUET
    epochs = pd.read_parquet(epochs_path) if epochs_path.is_file() else pd.DataFrame()
    runs = pd.read_parquet(runs_path)
    for table in (runs, epochs):  # collected before sweeps were columns: nothing was swept
        if len(table.columns) and "settings" not in table:
            table["settings"] = pd.Series("", index=table.index, dtype="string")
    return runs, epochs
