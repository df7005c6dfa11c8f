"""Is a run directory whole and true? And if not, set it aside so ``fwbench run`` redoes it.

A recorded result counts only after it is verified, on every read (``status``, ``collect``,
``analyze``, ``run``): ``status.json`` is an object with a known state and fields of the right
types; ``spec.json`` is readable, hashes to its own ``config_hash`` and is the run its directory
is named for (seed, settings hash); a ``done`` run also has a ``test.json`` whose metrics are
finite numbers in range (accuracies, macro-F1 and ECE in [0, 1], losses >= 0) and one
``epochs.jsonl`` line per epoch, 1..epochs, each field a finite number in range. A run that
fails any check (a truncated copy, a full disk, a hand edit, another run's files) is
``corrupt`` with its reason, left out of every statistic: ``status`` and
``collect`` name it, the report counts it, and ``fwbench run`` repairs it — the damaged files
are moved to ``quarantine/<time>/`` inside the run directory (nothing is deleted) and the run
resumes from its last checkpoint, which rewrites ``epochs.jsonl`` and evaluates ``test.json``
again (or trains from scratch when there is no checkpoint).
"""

from __future__ import annotations

import json
import math
import re
import shutil
import time
from typing import Any

from fwbench.core.errors import FwbenchError
from fwbench.core.fileio import write_json
from fwbench.record.runs import STATES, RunDir, RunSpec

QUARANTINE = "quarantine"


def _json(path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return FileNotFoundError
    except (OSError, ValueError):
        return ValueError


def _epochs_problem(run_dir: RunDir, epochs: int) -> str | None:
    try:
        lines = run_dir.epochs_path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return "epochs.jsonl is missing"
    except (OSError, ValueError):
        return "epochs.jsonl is unreadable"
    found = []
    for n, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
            found.append(record["epoch"])
        except (ValueError, TypeError, KeyError):
            return f"epochs.jsonl line {n} is truncated or unreadable"
        problem = _record_problem(record, EPOCH_RANGES, required=_EPOCH_REQUIRED)
        if problem:
            return f"epochs.jsonl line {n}: {problem}"
    if found != list(range(1, epochs + 1)):
        return f"epochs.jsonl holds epochs {_ranges(found)}, expected 1..{epochs}"
    return None


# The range of every recorded number (None: no bound on that side); each must be finite.
_UNIT = (0.0, 1.0)
_NONNEG = (0.0, None)
EPOCH_RANGES: dict[str, tuple[float | None, float | None]] = {
    "epoch": (1, None),
    "train_loss": _NONNEG,
    "train_accuracy": _UNIT,
    "val_loss": _NONNEG,
    "val_accuracy": _UNIT,
    "val_macro_f1": _UNIT,
    "epoch_time_seconds": _NONNEG,
    "learning_rate": _NONNEG,
    "images_per_second": _NONNEG,
    "data_time_seconds": _NONNEG,
}
TEST_RANGES: dict[str, tuple[float | None, float | None]] = {
    "accuracy": _UNIT,
    "top5_accuracy": _UNIT,
    "macro_f1": _UNIT,
    "ece": _UNIT,
    "loss": _NONNEG,
    "best_val_accuracy": _UNIT,
    "best_epoch": (1, None),
}
_EPOCH_REQUIRED = ("epoch", "val_accuracy")  # what the analysis reads (best epoch)
_STATUS_NUMBERS = ("started_at", "finished_at", "updated_at", "interrupted_at", "test_accuracy")


def _number_problem(key: str, value: Any, low: float | None, high: float | None) -> str | None:
    """Why ``value`` is not a finite number in [low, high] (None when it is)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"{key} is {type(value).__name__} {str(value)[:40]!r}, not a number"
    if not math.isfinite(value):
        return f"{key} is {value}, not a finite number"
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"[{low:g}, {high:g}]" if high is not None else f">= {low:g}"
        return f"{key} is {value:g}, outside {bounds}"
    return None


def _record_problem(record: Any, ranges: dict, required: tuple[str, ...] = ()) -> str | None:
    if not isinstance(record, dict):
        return f"holds a {type(record).__name__}, not an object"
    for key in required:
        if record.get(key) is None:
            return f"has no {key}"
    for key, (low, high) in ranges.items():
        if key in record and record[key] is not None:
            problem = _number_problem(key, record[key], low, high)
            if problem:
                return problem
    return None


def _test_problem(test: Any) -> str | None:
    problem = _record_problem(test, TEST_RANGES, required=("accuracy",))
    if problem:
        return problem
    per_class = test.get("per_class_accuracy")
    if per_class is not None:
        if not isinstance(per_class, list):
            return "per_class_accuracy is not a list"
        for i, value in enumerate(per_class):
            problem = _number_problem(f"per_class_accuracy[{i}]", value, *_UNIT)
            if problem:
                return problem
    return None


def _status_problem(status: Any) -> str | None:
    if not isinstance(status, dict):
        return f"status.json holds a {type(status).__name__}, not an object"
    state = status.get("state", "pending")
    if not isinstance(state, str) or state not in STATES:
        return f"status.json has state {str(state)[:40]!r}, not one of {', '.join(STATES)}"
    for key in _STATUS_NUMBERS:
        if status.get(key) is not None:
            problem = _number_problem(key, status[key], None, None)
            if problem:
                return f"status.json: {problem}"
    pid = status.get("pid")
    if pid is not None and (isinstance(pid, bool) or not isinstance(pid, int)):
        return f"status.json: pid is {type(pid).__name__}, not an integer"
    error = status.get("error")
    if error is not None and not isinstance(error, str):
        return f"status.json: error is {type(error).__name__}, not text"
    return None


_RUN_ID_NAME = re.compile(r"-s\d+-")


def spec_problem(run_dir: RunDir, spec: RunSpec) -> str | None:
    """Why ``spec`` is not the true spec of ``run_dir`` (edited, or another run's), or None."""
    if spec.config_hash and spec.with_hash().config_hash != spec.config_hash:
        return f"spec.json does not hash to its config_hash {spec.config_hash[:8]} (edited by hand)"
    name = run_dir.path.name
    if name not in (spec.run_id, spec.readable_id) and _RUN_ID_NAME.search(name):
        return f"spec.json is run {spec.run_id}, not the {name} its directory is named for"
    return None


def _ranges(values: list) -> str:
    if not values:
        return "none"
    return f"{values[0]}..{values[-1]} ({len(values)} lines)"


def corruption(run_dir: RunDir, state: str | None = None) -> str | None:
    """Why a run directory is not whole and true, or None when it is (see the module doc).

    Any run: ``status.json`` and ``spec.json`` (when present) must be readable, of the right
    types, and the spec the run's own. A ``done`` run: also ``test.json`` and one
    ``epochs.jsonl`` line per epoch, every number finite and in range.
    """
    status = _json(run_dir.status_path)
    if status is ValueError:
        return "status.json is truncated or unreadable"
    if status is not FileNotFoundError:
        problem = _status_problem(status)
        if problem:
            return problem
    state = state or run_dir.read_status().get("state")
    if state not in ("done", "diverged") and not run_dir.spec_path.exists():
        return None
    try:
        spec = run_dir.read_spec()
    except FwbenchError:
        return "spec.json is " + ("missing" if not run_dir.spec_path.exists() else "truncated")
    problem = spec_problem(run_dir, spec)
    if problem or state != "done":
        return problem
    test = _json(run_dir.test_path)
    if test is FileNotFoundError or test is ValueError:
        return "test.json is " + ("missing" if test is FileNotFoundError else "truncated")
    problem = _test_problem(test)
    if problem:
        return f"test.json: {problem}"
    return _epochs_problem(run_dir, spec.epochs)


def quarantine(run_dir: RunDir, spec: RunSpec, reason: str) -> str:
    """Move a corrupt run's damaged files aside and leave it ``interrupted`` (to be resumed).

    ``spec`` is the run's planned spec; it replaces an unreadable ``spec.json``. Returns where the
    damaged files went.
    """
    target = run_dir.path / QUARANTINE / time.strftime("%Y%m%d-%H%M%S")
    target.mkdir(parents=True, exist_ok=True)
    try:
        run_dir.read_spec()
    except FwbenchError:
        if run_dir.spec_path.exists():
            shutil.move(run_dir.spec_path, target / "spec.json")
        run_dir.write_spec(spec)
    # both are written again by the resumed run (epochs from the last checkpoint, test at the end)
    for path in (run_dir.test_path, run_dir.epochs_path):
        if path.exists():
            shutil.copy2(path, target / path.name)
    status = _json(run_dir.status_path)
    if status is ValueError:
        shutil.move(run_dir.status_path, target / "status.json")
    status = status if isinstance(status, dict) else {}
    for key in ("finished_at", "pid", "error", "test_accuracy"):
        status.pop(key, None)
    status.update(state="interrupted", repaired=reason, quarantined=str(target))
    status["updated_at"] = time.time()
    write_json(run_dir.status_path, status)
    return str(target)
