"""``fwbench bench`` orchestration: plan jobs, one framework subprocess each, CSV and ratios.

Imports no framework: each job runs in ``python -m fwbench.frameworks.<name>.bench``, with
``FWBENCH_THREADS`` set to the pinned thread count (both backends read it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pandas as pd

from fwbench.bench.measure import (
    COLUMNS,
    ERROR_MARK,
    MODES,
    PIPELINE_MODES,
    RESULT_MARK,
    BenchJob,
    SpeedSettings,
)
from fwbench.core.errors import FwbenchError
from fwbench.core.fileio import atomic_write
from fwbench.core.paths import Workspace
from fwbench.registry.arms import COMPILE_MODES, arm_env, get_arm
from fwbench.registry.datasets import get_dataset
from fwbench.registry.models import PRECISIONS, VARIANTS, check_choice, get_model

CSV_NAME = "bench.csv"


def plan_jobs(
    ws: Workspace,
    *,
    frameworks: list[str],
    models: list[str],
    precisions: list[str],
    batch_sizes: list[int],
    dataset: str,
    modes: list[str],
    settings: SpeedSettings,
    input_size: int | None = None,
    num_classes: int | None = None,
    warmup: int = 3,
    steps: int = 20,
    repeats: int = 5,
    variant: str = "library",
    train_config: Path | None = None,
    dataset_size: int | None = None,
    compile_modes: tuple[str, ...] = ("eager",),
    determinism: tuple[bool, ...] = (),
) -> list[BenchJob]:
    """Validate the choices; one job per (model, precision, batch, arm, compile mode, rule).

    ``dataset_size`` is the dataset's input size from the train config (None: the catalog's).
    ``determinism``: the determinism settings to measure, each for every arm (empty:
    ``settings.deterministic`` alone).
    """
    frameworks = [get_arm(fw).name for fw in frameworks]
    for c in compile_modes:
        check_choice("compile mode", c, COMPILE_MODES)
    for m in models:
        get_model(m)
    for p in precisions:
        check_choice("precision", p, PRECISIONS)
    for mode in modes:
        check_choice("mode", mode, MODES)
    check_choice("variant", variant, VARIANTS)
    info = get_dataset(dataset)
    for name, value in (("--warmup", warmup), ("--steps", steps), ("--repeats", repeats)):
        if value < (0 if name == "--warmup" else 1):
            raise FwbenchError(f"{name} is too small: {value}", fix=f"pass a larger {name}")
    if any(b < 1 for b in batch_sizes):
        raise FwbenchError("batch sizes must be positive", fix="pass --batch-sizes 64")
    native = dataset_size or info.image_size
    size, classes = input_size or native, num_classes or info.num_classes
    if any(m in PIPELINE_MODES for m in modes):
        _need_prepared(ws, dataset)
        if (size, classes) != (native, info.num_classes):
            raise FwbenchError(
                f"the pipeline modes read '{dataset}' ({native}x{native}, {info.num_classes} "
                f"classes), not {size}x{size} with {classes} classes",
                fix="drop --img-size/--num-classes, or pass --modes bare,harness",
            )
    ordered = tuple(m for m in MODES if m in modes)
    rules = determinism or (settings.deterministic,)
    return [
        BenchJob(
            framework=fw, model=m, precision=p, batch_size=b, input_size=size,
            num_classes=classes, dataset=dataset, modes=ordered, warmup=warmup, steps=steps,
            repeats=repeats, settings=replace(settings, deterministic=d), variant=variant,
            workspace=str(ws.root), compile=c,
            train_config=None if train_config is None else str(train_config),
        )
        for m in models for p in precisions for b in batch_sizes for d in rules
        for fw in frameworks for c in compile_modes
    ]  # fmt: skip


def _need_prepared(ws: Workspace, dataset: str) -> None:
    path = ws.prepared_dir / dataset / "train_images.npy"
    if not path.is_file():
        raise FwbenchError(
            f"dataset '{dataset}' is not prepared (the pipeline modes read it)",
            path=path.parent,
            fix=f"run `fwbench data prepare {dataset}`, or pass --modes bare,harness",
        )


def run_job(job: BenchJob, python: str = sys.executable) -> list[dict]:
    """Run ``job`` in its framework's own process; return its rows."""
    threads = str(job.settings.threads)
    rule = arm_env(job.framework, threads, job.settings.deterministic)  # before it starts
    env = os.environ | {"FWBENCH_THREADS": threads} | rule
    module = get_arm(job.framework).module("bench")
    cmd = [python, "-m", module, "--json-args", job.to_json()]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_MARK) and proc.returncode == 0:
            return json.loads(line.removeprefix(RESULT_MARK))
        if line.startswith(ERROR_MARK):
            raise FwbenchError(**json.loads(line.removeprefix(ERROR_MARK)))
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-15:]
    raise RuntimeError(
        f"{module} exited with {proc.returncode} for {job.framework}/{job.compile}/{job.model}/"
        f"{job.precision}/"
        f"b{job.batch_size}:\n" + "\n".join(tail)
    )


def append_csv(path: Path, rows: list[dict]) -> Path:
    """Append ``rows`` to the CSV at ``path`` (created with :data:`COLUMNS` if absent)."""
    new = pd.DataFrame(rows, columns=list(COLUMNS))
    if path.is_file():
        new = pd.concat([pd.read_csv(path), new], ignore_index=True)
    return atomic_write(path, lambda p: new.to_csv(p, index=False))


def run_bench(
    ws: Workspace,
    jobs: list[BenchJob],
    *,
    runner: Callable[[BenchJob], list[dict]] = run_job,
    on_job: Callable[[BenchJob], None] | None = None,
) -> list[dict]:
    """Run every job, append its rows to ``results/bench.csv`` as it finishes; return all rows."""
    rows: list[dict] = []
    for job in jobs:
        if on_job:
            on_job(job)
        job_rows = runner(job)
        append_csv(ws.results_dir / CSV_NAME, job_rows)
        rows += job_rows
    return rows
