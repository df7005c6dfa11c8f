"""What a run checks before it trains, and the settings it pins for its whole life.

- Before ``fwbench train`` creates a run directory: the dataset is prepared (every file present
  at its manifest's size) and the run has at least one optimizer step — a failed precondition
  leaves nothing behind that blocks the next attempt.
- Before training starts: the prepared files match their manifest (``fwbench.data.integrity``),
  hashed once per run and remembered in ``status.json``.
- The intra-op thread count: ``training.threads``, else what the process may use at the run's
  first start — recorded in ``status.json`` and kept when the run resumes, so a resumed run
  computes exactly as an uninterrupted one.
"""

from __future__ import annotations

import os
import time

from fwbench.core.errors import Interrupted
from fwbench.core.paths import Workspace
from fwbench.data.integrity import check_present, verify_prepared
from fwbench.recipe.inputs import step_plan
from fwbench.record.runs import RunDir, RunSpec

THREADS_ENV = "FWBENCH_THREADS"


def check_trainable(ws: Workspace, spec: RunSpec) -> None:
    """The dataset is prepared and the run has at least one step (reads no array)."""
    manifest = check_present(ws, spec.dataset)
    n_train = int(manifest.get("sizes", {}).get("train", 0))
    if spec.subset is not None:
        n_train = min(n_train, spec.subset)
    step_plan(spec, n_train)


def verify_run_data(ws: Workspace, spec: RunSpec, run_dir: RunDir) -> None:
    """Refuse prepared data that does not match its manifest (hashes once per run)."""
    status = run_dir.read_status()
    verified = verify_prepared(ws, spec.dataset, status.get("data_verified"))
    if verified != status.get("data_verified"):
        run_dir.set_status(status.get("state", "pending"), data_verified=verified)


def pin_threads(spec: RunSpec, run_dir: RunDir) -> int:
    """Fix the run's thread count in ``$FWBENCH_THREADS`` (read by both backends); return it."""
    from fwbench.core.threads import thread_count

    status = run_dir.read_status()
    threads = spec.train_config.training.threads or status.get("threads") or thread_count()
    os.environ[THREADS_ENV] = str(threads)
    if status.get("threads") != threads:
        run_dir.set_status(status.get("state", "pending"), threads=threads)
    return int(threads)


def interrupted(run_dir: RunDir, spec: RunSpec) -> Interrupted:
    """Mark a run stopped by Ctrl-C ``interrupted`` (resumable); the error the CLI prints."""
    done = len(run_dir.epochs())
    run_dir.set_status("interrupted", interrupted_at=time.time())
    with open(run_dir.log_path, "a", encoding="utf-8") as log:
        log.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} interrupted after epoch {done}\n")
    return Interrupted(
        f"run {spec.run_id} left interrupted after {done} of {spec.epochs} epochs; "
        "`fwbench run` (or this command again) resumes it from its last checkpoint",
        path=run_dir.path,
    )
