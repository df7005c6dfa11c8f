"""Is a finished run directory whole? And if not, set it aside so ``fwbench run`` redoes it.

A run whose ``status.json`` says ``done`` must have a readable ``spec.json``, a ``test.json``
with its test metrics and one ``epochs.jsonl`` line per epoch, 1..epochs. A run that says so but
lacks one of them (a truncated copy, a full disk, a hand edit) is ``corrupt``: ``status`` and
``collect`` name it, the report counts it, and ``fwbench run`` repairs it — the damaged files
are moved to ``quarantine/<time>/`` inside the run directory (nothing is deleted) and the run
resumes from its last checkpoint, which rewrites ``epochs.jsonl`` and evaluates ``test.json``
again (or trains from scratch when there is no checkpoint).
"""

from __future__ import annotations

import json
import shutil
import time
from typing import Any

from fwbench.core.errors import FwbenchError
from fwbench.core.fileio import write_json
from fwbench.record.runs import RunDir, RunSpec

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
            found.append(json.loads(line)["epoch"])
        except (ValueError, TypeError, KeyError):
            return f"epochs.jsonl line {n} is truncated or unreadable"
    if found != list(range(1, epochs + 1)):
        return f"epochs.jsonl holds epochs {_ranges(found)}, expected 1..{epochs}"
    return None


def _ranges(values: list) -> str:
    if not values:
        return "none"
    return f"{values[0]}..{values[-1]} ({len(values)} lines)"


def corruption(run_dir: RunDir, state: str | None = None) -> str | None:
    """Why a run directory is not whole, or None when it is.

    Any run: ``status.json`` and ``spec.json`` (when present) must be readable. A ``done`` run:
    also ``test.json`` and one ``epochs.jsonl`` line per epoch.
    """
    if _json(run_dir.status_path) is ValueError:
        return "status.json is truncated or unreadable"
    state = state or run_dir.read_status().get("state")
    if state not in ("done", "diverged") and not run_dir.spec_path.exists():
        return None
    try:
        spec = run_dir.read_spec()
    except FwbenchError:
        return "spec.json is " + ("missing" if not run_dir.spec_path.exists() else "truncated")
    if state != "done":
        return None
    test = _json(run_dir.test_path)
    if not isinstance(test, dict) or not isinstance(test.get("accuracy"), int | float):
        return "test.json is " + ("missing" if test is FileNotFoundError else "truncated")
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
