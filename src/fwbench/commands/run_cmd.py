"""``fwbench run``: a stage through the local or Slurm executor (``study/launch.py``)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from fwbench.commands.options import (
    BatchSizeOpt,
    LrOpt,
    MatrixOpt,
    OptPath,
    SetOpt,
    TrackingOpt,
    TrackingUriOpt,
    TrainConfigOpt,
    WorkspaceOpt,
    tracking_sets,
)
from fwbench.core.errors import FwbenchError, Interrupted
from fwbench.core.fileio import check_writable
from fwbench.core.paths import Workspace
from fwbench.record.lock import LOCK_NAME, describe_holder
from fwbench.study.launch import make_executor, notices, prepare_run_dirs
from fwbench.study.matrix import (
    UNSUCCESSFUL,
    VIEW_STATES,
    PlannedRun,
    SmokeOptions,
    count_states,
    error_line,
    plan,
    spec_conflict,
    to_launch,
)

StageOpt = typer.Option(
    None, "--stage", "-s", help="Matrix stage: stage1, stage2, demo, ... (repeatable)."
)
OnlyOpt = typer.Option(
    None, "--only", help="Filter runs, e.g. 'dataset=cifar10,model=resnet50|mobilenetv2'."
)
Opt = typer.Option


def _stage_names(stage: list[str] | None, matrix: Path | None) -> list[str]:
    from fwbench.config.train import read_yaml

    if stage:
        return list(dict.fromkeys(stage))
    if matrix is not None:
        names = list(read_yaml(Path(matrix)).get("stages") or {})
        if len(names) == 1:
            return names
        raise FwbenchError(
            f"{matrix} defines {len(names)} stages ({', '.join(names)})",
            fix="pick one with --stage",
        )
    raise FwbenchError("no stage given", fix="pass --stage stage1|stage2|demo, or --matrix FILE")


def _sbatch_options(pairs: list[str]) -> dict[str, str | bool]:
    out: dict[str, str | bool] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not key.strip():
            raise FwbenchError(f"bad --sbatch-opt '{pair}'", fix="write KEY=VALUE (or KEY)")
        out[key.strip().lstrip("-")] = value if sep else True
    return out


def _print_runs(out: Console, runs: list[PlannedRun]) -> None:
    from fwbench.record.view import progress_words

    for r in runs:
        state = r.state
        if spec_conflict(r):  # another run's directory: refused by `run`, not repaired
            note = "  (run directory holds other settings)"
        else:
            note = f"  {error_line(r.run_dir)}" if state in (*UNSUCCESSFUL, "corrupt") else ""
            words = progress_words(r.run_dir, state, r.spec.epochs)
            note += f"  ({words})" if words else ""
        out.print(f"{state:<12} {r.name}{note}", highlight=False, soft_wrap=True, markup=False)


def _summary(name: str, runs: list[PlannedRun]) -> str:

    counts = count_states(runs)
    return f"{name}: {len(runs)} runs (" + ", ".join(f"{counts[s]} {s}" for s in VIEW_STATES) + ")"


def run(
    stage: list[str] | None = StageOpt,
    matrix: OptPath = MatrixOpt,
    executor: str = Opt("local", "--executor", "-e", help="local or slurm."),
    dry_run: bool = Opt(False, "--dry-run", help="List the runs and their state; launch nothing."),
    only: list[str] | None = OnlyOpt,
    retry_failed: bool = Opt(False, "--retry-failed", help="Rerun failed and diverged runs."),
    parallel: int | None = Opt(
        None, "--parallel", "-j", min=1, max=4096, help="Local: runs at once."
    ),
    sets: list[str] | None = SetOpt,
    batch_size: int | None = BatchSizeOpt,
    lr: float | None = LrOpt,
    epochs_override: int | None = Opt(
        None,
        "--epochs",
        "--epochs-override",
        min=1,
        max=100_000,
        help="Train N epochs (every run).",
    ),
    subset: int | None = Opt(None, "--subset", min=1, max=10**9, help="Smoke: train on N images."),
    eval_subset: int | None = Opt(
        None, "--eval-subset", min=1, max=10**9, help="Smoke: evaluate on N val and N test images."
    ),
    num_workers: int | None = Opt(
        None, "--num-workers", min=0, max=4096, help="DataLoader workers."
    ),
    tracking: str | None = TrackingOpt,
    tracking_uri: str | None = TrackingUriOpt,
    detach: bool = Opt(False, "--detach", help="Slurm: submit, print job ids, return."),
    partition: str | None = Opt(None, "--partition", help="Slurm partition."),
    time_min: int | None = Opt(
        None, "--time-min", min=1, max=10**6, help="Slurm time limit per run (minutes)."
    ),
    max_requeues: int | None = Opt(
        None,
        "--max-requeues",
        min=0,
        max=1000,
        help="Slurm: requeues after a time limit (resuming).",
    ),
    mem_gb: int | None = Opt(None, "--mem-gb", min=1, max=10**6, help="Slurm memory per run (GB)."),
    cpus: int | None = Opt(None, "--cpus", min=1, max=4096, help="Slurm CPUs per run."),
    gpus: int | None = Opt(None, "--gpus", min=0, max=1024, help="Slurm GPUs per run (0: none)."),
    account: str | None = Opt(None, "--account", help="Slurm account."),
    sbatch_opt: list[str] | None = Opt(None, "--sbatch-opt", help="Extra sbatch KEY=VALUE."),
    executor_config: OptPath = Opt(None, "--executor-config", help="Your executor.yaml."),
    config: OptPath = TrainConfigOpt,
    workspace: OptPath = WorkspaceOpt,
) -> None:
    """Run a stage of the matrix: finished runs are skipped, interrupted ones resume."""
    from fwbench.config.executor import EXECUTOR, load_executor_config
    from fwbench.config.overrides import combine_sets
    from fwbench.config.train import find_user_config

    if executor not in ("local", "slurm"):
        raise FwbenchError(f"unknown executor '{executor}'; known: local, slurm")
    if detach and executor != "slurm":
        raise FwbenchError("--detach needs --executor slurm", fix="add --executor slurm")
    ws = Workspace.from_env(workspace)
    names = _stage_names(stage, matrix)
    name = "+".join(names)
    all_sets = (
        *combine_sets(sets, batch_size=batch_size, lr=lr),
        *tracking_sets(tracking, tracking_uri),
    )
    smoke = SmokeOptions(epochs_override, subset, num_workers, eval_subset, all_sets)
    planned = (plan(ws, n, config=config, matrix=matrix, only=only, smoke=smoke) for n in names)
    unique: dict[str, PlannedRun] = {}
    for r in (r for rs in planned for r in rs):  # stages share runs: each is listed once
        unique.setdefault(r.run_id, r)
    runs = list(unique.values())
    launch = to_launch(runs, retry_failed)
    out = Console(highlight=False, soft_wrap=True)
    out.print(_summary(name, runs))
    for line in notices(ws, runs):
        out.print(line, soft_wrap=True)
    if dry_run:
        _print_runs(out, runs)
        out.print(f"would launch {len(launch)} run(s) with the {executor} executor")
        return
    conflicts = [r.run_id for r in runs if spec_conflict(r)]
    if conflicts:  # only a hand-made directory can hold a spec other than its id says
        raise FwbenchError(
            f"{len(conflicts)} run directories hold runs with other settings (e.g. {conflicts[0]})",
            path=ws.runs_dir,
            fix="delete those run directories, or use another --workspace",
        )
    for r in runs:
        if r.state == "running":  # held by a live trainer: this runner leaves it alone
            holder = describe_holder(r.run_dir.path / LOCK_NAME)
            out.print(f"busy {r.name}: {holder}; skipped", soft_wrap=True, markup=False)
    launching = {r.run_id for r in launch}
    skipped = [r for r in runs if r.state in UNSUCCESSFUL and r.run_id not in launching]
    for r in skipped:
        out.print(
            f"skipped {r.state} {r.name}: {error_line(r.run_dir)} (--retry-failed reruns)",
            soft_wrap=True,
            markup=False,
        )
    if launch:
        check_writable(ws.runs_dir)  # a read-only workspace is one line, not one per run
    launch, unwritable = prepare_run_dirs(launch, out)
    if launch:
        exec_cfg = load_executor_config(find_user_config(ws.configs_dir, EXECUTOR, executor_config))
        slurm = dict(
            partition=partition, time_min=time_min, mem_gb=mem_gb, cpus=cpus, gpus=gpus,
            account=account, max_requeues=max_requeues,
            sbatch=exec_cfg.slurm.sbatch | _sbatch_options(sbatch_opt or []),
        )  # fmt: skip
        chosen = make_executor(
            executor, ws, exec_cfg, out, parallel=parallel, detach=detach, slurm=slurm
        )
        out.print(f"launching {len(launch)} run(s) with the {executor} executor")
        try:
            outcomes = chosen.run(launch)
        except KeyboardInterrupt:
            raise Interrupted(
                f"stage {name}: the runs in progress were stopped and left interrupted, finished "
                f"runs are kept; `fwbench run {' '.join(f'--stage {n}' for n in names)}` resumes "
                "them"
            ) from None
        busy = [o.run_id for o in outcomes if o.state == "busy"]
        if busy:
            out.print(f"skipped {len(busy)} run(s) busy in another runner: {', '.join(busy)}")
        unwritable += [o for o in outcomes if o.state == "failed"]  # some not recorded on disk
        if detach:
            return
    out.print(_summary(name, runs))
    # A run the executor returned from unfinished (killed: SIGTERM leaves it interrupted) is no
    # success either: the stage is incomplete, so the command exits 1 (rerunning resumes it).
    failed = [r for r in runs if r.state in ("failed", "interrupted")]
    for r in failed:
        out.print(
            f"{r.state} {r.name}: {error_line(r.run_dir)} (log: {r.run_dir.log_path})",
            soft_wrap=True,
            markup=False,
        )
    for o in unwritable:
        if o.run_id not in {r.run_id for r in failed}:
            out.print(f"failed {o.run_id}: {o.error}", soft_wrap=True)
    if failed or unwritable:
        raise typer.Exit(1)
