"""``fwbench smoke``: train every arm of a stage briefly on the real data before the matrix."""

from __future__ import annotations

import math
import shutil
import subprocess

import typer
from rich.console import Console
from rich.table import Table

from fwbench.commands.options import MatrixOpt, OptPath, SetOpt, TrainConfigOpt, WorkspaceOpt

Opt = typer.Option
CPU_STEPS, GPU_STEPS = 24, 200  # a 2-core CPU runs the demo's MobileNetV2 at ~20-200 img/s


def gpu_count() -> int:
    """NVIDIA GPUs this machine shows (``nvidia-smi -L``; 0 without it). Imports no framework."""
    if shutil.which("nvidia-smi") is None:
        return 0
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return 0
    return sum(line.startswith("GPU ") for line in out.stdout.splitlines())


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "n/a"
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def _memory(row) -> str:
    if row.peak_memory_bytes is None:
        return "n/a"
    where = "" if "RSS" not in row.peak_memory_source else " (RSS)"
    return f"{row.peak_memory_bytes / 2**30:.2f} GiB{where}"


def smoke_table(report) -> Table:
    """One line per row: the checks, then speed, memory, compile time and the run estimate."""
    table = Table(
        "row", "runs", "check", "train loss", "val loss", "images/s", "data wait", "peak memory",
        "compile s", "full run (est.)", title=f"fwbench smoke --stage {report.stage}",
    )  # fmt: skip
    table.columns[0].overflow = "fold"
    for r in report.rows:
        check = "[green]ok[/]" if r.ok else "[red]FAIL[/]: " + "; ".join(r.problems)
        table.add_row(
            r.label, str(r.runs), check, f"{r.first_loss:.3f} -> {r.last_loss:.3f}",
            f"{r.val_loss:.3f}", f"{r.images_per_second:,.0f}", f"{r.data_wait:.0%}",
            _memory(r), f"{r.compile_seconds:.1f}", _duration(r.full_seconds),
        )  # fmt: skip
    return table


def smoke(
    stage: str = Opt(..., "--stage", "-s", help="Matrix stage: demo, stage1, ..."),
    only: list[str] | None = Opt(
        None, "--only", help="Filter rows, e.g. 'framework=pytorch|keras-jax,model=resnet50'."
    ),
    steps: int | None = Opt(
        None,
        "--steps",
        min=2,
        help=f"Steps per row (default {GPU_STEPS} on a GPU, {CPU_STEPS} "
        "on a CPU), as two epochs of a training subset.",
    ),
    parallel: int | None = Opt(
        None, "--parallel", "-j", min=1, help="Runs at once for the estimate (executor.yaml's)."
    ),
    gpus: int | None = Opt(None, "--gpus", min=0, help="GPUs for the estimate (default: seen)."),
    sets: list[str] | None = SetOpt,
    keep: OptPath = Opt(None, "--keep", help="Keep the smoke runs in this folder (logs, files)."),
    executor_config: OptPath = Opt(None, "--executor-config", help="Your executor.yaml."),
    config: OptPath = TrainConfigOpt,
    matrix: OptPath = MatrixOpt,
    workspace: OptPath = WorkspaceOpt,
) -> None:
    """Train each arm x model x precision of a stage a few hundred steps on the real data;
    check it learns, measure speed and memory, estimate the stage's wall time. Exit 1 if any
    arm would fail."""
    from fwbench.config.executor import EXECUTOR, load_executor_config
    from fwbench.config.train import find_user_config
    from fwbench.core.paths import Workspace
    from fwbench.study.smoke import smoke_stage

    ws = Workspace.from_env(workspace)
    exec_cfg = load_executor_config(find_user_config(ws.configs_dir, EXECUTOR, executor_config))
    n_gpus = gpu_count() if gpus is None else gpus
    out = Console(highlight=False, soft_wrap=True)
    if not out.is_terminal:  # a log or a pipe: the table at full width, never folded
        out = Console(highlight=False, soft_wrap=True, width=200)
    with out.status("smoke ...") as status:

        def on_row(spec) -> None:
            status.update(f"smoke: {spec.framework} {spec.model} {spec.precision} ...")

        report = smoke_stage(
            ws, stage, steps=steps or (GPU_STEPS if n_gpus else CPU_STEPS),
            parallel=parallel or exec_cfg.local.parallel, gpus=n_gpus, only=only,
            sets=tuple(sets or ()), config=config, matrix=matrix, keep=keep, on_row=on_row,
        )  # fmt: skip
    out.print(smoke_table(report))
    runs = sum(r.runs for r in report.rows)
    where = f"{n_gpus} GPU(s)" if n_gpus else "CPU"
    out.print(
        f"stage {stage}: {runs} runs, estimated wall time {_duration(report.stage_seconds)} "
        f"({report.slots} at once: --parallel {parallel or exec_cfg.local.parallel}, {where})"
    )
    if not report.ok:
        failed = sum(not r.ok for r in report.rows)
        out.print(f"[red]{failed} of {len(report.rows)} rows would fail[/]")
        raise typer.Exit(1)
