"""``fwbench train``: one training run, one process, one run directory (seed phase 5).

Two forms:

- ``fwbench train --framework F --dataset D --model M [--precision --seed --config ...]``
  resolves a RunSpec, writes it to ``runs/<run_id>/spec.json`` (or ``--run-dir``) and trains;
- ``fwbench train --run-dir DIR`` trains (or resumes) the spec already in ``DIR/spec.json``:
  what executors launch.

A run whose status is ``done`` (or ``diverged``) is not retrained. The process imports only its
own framework, inside the backend.
"""

from __future__ import annotations

import os

import typer
from rich.console import Console

from fwbench.commands.options import (
    BatchSizeOpt,
    LrOpt,
    OptPath,
    SetOpt,
    TrackingOpt,
    TrackingUriOpt,
    TrainConfigOpt,
    WorkspaceOpt,
    tracking_sets,
)
from fwbench.core.paths import Workspace
from fwbench.record.check import corruption, quarantine
from fwbench.record.lock import lock_for_training
from fwbench.registry.datasets import DATASETS
from fwbench.registry.models import (
    FRAMEWORKS,
    MODELS,
    PRECISIONS,
    VARIANTS,
)
from fwbench.training.request import RunRequest

_WORKERS_HELP = (
    "DataLoader workers (PyTorch arm); overrides training.num_workers. Default: 0 on a machine "
    "with 4 CPUs or fewer (as `fwbench bench` decides), else half the CPUs."
)


def train(
    framework: str | None = typer.Option(None, help=f"One of: {', '.join(FRAMEWORKS)}."),
    dataset: str | None = typer.Option(None, help=f"One of: {', '.join(DATASETS)}."),
    model: str | None = typer.Option(None, help=f"One of: {', '.join(MODELS)}."),
    precision: str = typer.Option("fp32", help=f"One of: {', '.join(PRECISIONS)}."),
    seed: int = typer.Option(42, help="Run seed (weights, order, augmentation)."),
    config: OptPath = TrainConfigOpt,
    sets: list[str] | None = SetOpt,
    batch_size: int | None = BatchSizeOpt,
    lr: float | None = LrOpt,
    epochs_override: int | None = typer.Option(
        None,
        "--epochs",
        "--epochs-override",
        min=1,
        max=100_000,
        help="Train N epochs, not the config's.",
    ),
    num_workers: int | None = typer.Option(
        None, "--num-workers", min=0, max=4096, help=_WORKERS_HELP
    ),
    variant: str = typer.Option("library", help=f"Model variant: {', '.join(VARIANTS)}."),
    init: str | None = typer.Option(
        None, help="Initial weights: own or shared (matched: the PyTorch arm's; the default)."
    ),
    subset: int | None = typer.Option(
        None,
        "--subset",
        min=1,
        max=10**9,
        help="Train on a stratified subset of N images (validation and test stay whole).",
    ),
    eval_subset: int | None = typer.Option(
        None,
        "--eval-subset",
        min=1,
        max=10**9,
        help="Evaluate on a stratified N of val and of test.",
    ),
    compile_mode: str | None = typer.Option(
        None, "--compile", help="eager or compiled (default: the config's training.compile)."
    ),
    tracking: str | None = TrackingOpt,
    tracking_uri: str | None = TrackingUriOpt,
    run_dir: OptPath = typer.Option(
        None, "--run-dir", help="Run directory (default: runs/<run_id>); alone: run its spec.json."
    ),
    progress: bool = typer.Option(
        True, "--progress/--no-progress", help="Live bar on a terminal (epoch lines always)."
    ),
    framework_logs: bool = typer.Option(
        False, "--framework-logs", help="Show TensorFlow/absl C++ log lines (hidden by default)."
    ),
    workspace: OptPath = WorkspaceOpt,
) -> None:
    """Train one run (or resume it) and write its run directory."""
    from fwbench.config.overrides import combine_sets

    ws = Workspace.from_env(workspace)
    all_sets = [
        *combine_sets(sets, batch_size=batch_size, lr=lr),
        *tracking_sets(tracking, tracking_uri),
    ]
    request = RunRequest(
        framework=framework,
        dataset=dataset,
        model=model,
        precision=precision,
        seed=seed,
        variant=variant,
        init=init,
        config=config,
        epochs_override=epochs_override,
        subset=subset,
        eval_subset=eval_subset,
        num_workers=num_workers,
        compile_mode=compile_mode,
        sets=tuple(all_sets),
    )
    rd, spec = request.resolve(ws, run_dir)
    out = Console(stderr=True, highlight=False, soft_wrap=True)  # a log line is never cut
    verified = None
    if not rd.spec_path.exists():  # a new run: the data is hashed before its directory exists
        from fwbench.data.integrity import verify_prepared

        verified = verify_prepared(ws, spec.dataset)
    lock = lock_for_training(rd.path)  # one trainer per run; says who holds it if busy
    rd.write_spec(spec)
    if verified is not None and rd.read_status().get("data_verified") is None:
        rd.set_status(rd.read_status().get("state", "pending"), data_verified=verified)
    damage = corruption(rd)
    if damage:  # a "done" run whose files are not whole: set them aside, resume, re-evaluate
        where = quarantine(rd, spec, damage)
        out.print(f"{spec.run_id}: corrupt ({damage}); damaged files kept in {where}; repairing")
    if rd.state in ("done", "diverged"):
        out.print(f"{spec.run_id}: already {rd.state}, not retrained ({rd.path})")
        return
    if framework_logs:
        os.environ["FWBENCH_FRAMEWORK_LOGS"] = "1"
    from fwbench.training.loop import stderr_is_log, train_run

    if stderr_is_log(rd):  # an executor's child: train.log gets these lines from the run itself
        out = Console(stderr=True, quiet=True)
    t = spec.train_config.training
    effective_batch = t.batch_size * t.gradient_accumulation_steps
    out.print(f"{spec.run_id}: {spec.train_config.lr.describe(effective_batch)}")
    try:
        state = train_run(rd, ws, show_progress=progress)
    finally:
        lock.release()
    status = rd.read_status()
    if state == "done":
        out.print(f"{spec.run_id}: done, test accuracy {status['test_accuracy']:.4f} ({rd.path})")
    else:
        out.print(f"{spec.run_id}: {state}: {status.get('error', '')} ({rd.path})")
