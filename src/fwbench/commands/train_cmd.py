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
from pathlib import Path

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
from fwbench.data.catalog import DATASETS
from fwbench.errors import FwbenchError
from fwbench.frameworks.arms import COMPILE_MODES, get_arm
from fwbench.models import FRAMEWORKS, MODELS, PRECISIONS, VARIANTS, check_choice, get_model
from fwbench.paths import Workspace
from fwbench.runcheck import corruption, quarantine
from fwbench.runlock import lock_for_training
from fwbench.runs import RunDir, make_spec

_WORKERS_HELP = (
    "DataLoader workers (PyTorch arm); overrides training.num_workers. Default: 0 on a machine "
    "with 4 CPUs or fewer (as `fwbench bench` decides), else half the CPUs."
)


def _resolve(ws: Workspace, run_dir: Path | None, identity: dict[str, str | None], options: dict):

    given = {k: v for k, v in identity.items() if v is not None}
    if not given:
        if run_dir is None:
            raise FwbenchError(
                "nothing to train",
                fix="pass --framework, --dataset and --model, or --run-dir of a run with spec.json",
            )
        _check_run_dir(Path(run_dir))
        rd = RunDir(run_dir)
        return rd, rd.read_spec()
    missing = [k for k in ("framework", "dataset", "model") if k not in given]
    if missing:
        raise FwbenchError(
            f"missing --{', --'.join(missing)}",
            fix="give --framework, --dataset and --model (or only --run-dir to rerun a spec)",
        )
    given["framework"] = get_arm(given["framework"]).name
    check_choice("dataset", given["dataset"], tuple(DATASETS))
    get_model(given["model"])
    check_choice("precision", options["precision"], PRECISIONS)
    check_choice("variant", options["variant"], VARIANTS)
    if options["compile_mode"] is not None:
        check_choice("compile mode", options["compile_mode"], COMPILE_MODES)
    from fwbench.preflight import check_trainable  # numpy: not for `fwbench --help`

    spec = _spec(ws, given, options)
    if run_dir is not None:
        _check_run_dir(Path(run_dir))
    rd = RunDir(run_dir or ws.runs_dir / spec.run_id)
    check_trainable(ws, spec)  # before the run directory exists: a failure leaves nothing
    return rd, spec


def _check_run_dir(path: Path) -> None:
    """``--run-dir`` names an fwbench run directory (it holds ``spec.json``), or a folder that
    is empty or not there yet: a user's own folder is never written into."""
    if path.exists() and not path.is_dir():
        raise FwbenchError("--run-dir is a file, not a folder", path=path, fix="name a folder")
    if path.is_dir() and not (path / "spec.json").is_file() and any(path.iterdir()):
        raise FwbenchError(
            "--run-dir is not an fwbench run directory (no spec.json) and is not empty",
            path=path,
            fix="name an empty or new folder, or a run directory fwbench made",
        )


def _spec(ws: Workspace, given: dict[str, str], options: dict):
    from fwbench.config import TRAIN_CONFIG, find_user_config, load_train_config
    from fwbench.overrides import apply_sets, fit_batch_to_subset, fit_notice

    cfg = load_train_config(find_user_config(ws.configs_dir, TRAIN_CONFIG, options["config"]))
    sets = options["sets"]
    cfg = apply_sets(cfg, sets)
    cfg_fitted, fitted = fit_batch_to_subset(cfg, options["subset"])
    if fitted:
        Console(stderr=True, highlight=False).print(fit_notice(fitted), soft_wrap=True)
        sets = [*sets, fitted]
    epochs = options["epochs_override"]
    return make_spec(
        cfg_fitted,
        dataset=given["dataset"],
        model=given["model"],
        precision=options["precision"],
        seed=options["seed"],
        framework=given["framework"],
        variant=options["variant"],
        init=options["init"],
        epochs_override=epochs,
        subset=options["subset"],
        eval_subset=options["eval_subset"],
        num_workers=options["num_workers"],
        compile_mode=options["compile_mode"],
        overrides=[*sets, *([f"epochs={epochs}"] if epochs else [])],
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
    from fwbench.overrides import shortcut_sets

    ws = Workspace.from_env(workspace)
    all_sets = [
        *(sets or []),
        *shortcut_sets(batch_size=batch_size, lr=lr),
        *tracking_sets(tracking, tracking_uri),
    ]
    rd, spec = _resolve(
        ws,
        run_dir,
        {"framework": framework, "dataset": dataset, "model": model},
        {
            "precision": precision,
            "seed": seed,
            "variant": variant,
            "init": init,
            "config": config,
            "epochs_override": epochs_override,
            "subset": subset,
            "eval_subset": eval_subset,
            "num_workers": num_workers,
            "compile_mode": compile_mode,
            "sets": all_sets,
        },
    )
    out = Console(stderr=True, highlight=False)
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
    t = spec.train_config.training
    effective_batch = t.batch_size * t.gradient_accumulation_steps
    out.print(f"{spec.run_id}: {spec.train_config.lr.describe(effective_batch)}")
    from fwbench.training import train_run

    try:
        state = train_run(rd, ws, show_progress=progress)
    finally:
        lock.release()
    status = rd.read_status()
    if state == "done":
        out.print(f"{spec.run_id}: done, test accuracy {status['test_accuracy']:.4f} ({rd.path})")
    else:
        out.print(f"{spec.run_id}: {state}: {status.get('error', '')} ({rd.path})")
