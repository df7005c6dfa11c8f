"""``fwbench smoke``: every arm x model x precision of a stage trains briefly on the real data.

Before a matrix spends GPU-days, each distinct row of the stage (its runs without the seed axis)
trains ``steps`` optimizer steps as two epochs of a stratified training subset, through the
real ``fwbench train`` process (the same backend, loop, pipeline and checkpoints as the matrix),
on a copy of the first seed's spec in a scratch directory. Per row it reports whether training
works — the run finishes, every loss is finite, the second epoch's mean training loss is below
the first's, the validation loss is finite — and what the stage will cost: steady images/s
(second epoch), data-wait share, peak device memory (host RSS on a CPU), compile seconds (the
first epoch's excess over the second: tracing, compilation, autotuning, the first evaluation)
and an estimate of one full run. The stage's estimated wall time schedules every run of the
stage (all seeds) on the executor's slots: ``--parallel`` runs at once, at most one per GPU.

The smoke's schedule is the recipe compressed into its two epochs (warmup the same share of the
smoke as of the run, then the peak LR and the decay), so the peak LR is exercised within a few
hundred steps.
"""

from __future__ import annotations

import heapq
import math
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from fwbench.core.paths import Workspace
from fwbench.data.integrity import read_manifest
from fwbench.recipe.inputs import step_plan
from fwbench.record.runs import RunDir, RunSpec
from fwbench.study.executors.interface import train_command
from fwbench.study.matrix import SmokeOptions, error_line, load_configs, parse_filters, select
from fwbench.study.matrix import expand_stage as expand
from fwbench.training.preflight import check_trainable

EVAL_CAP = 2000  # val/test images a smoke evaluates at most (the estimate scales per image)
SMOKE_EPOCHS = 2  # the first carries compilation; the second is timed and must train lower


@dataclass(frozen=True)
class SmokeRow:
    """One arm x model x precision (x dataset, variant, execution) of the stage and its smoke."""

    spec: RunSpec  # the smoke's own spec (first seed, shortened)
    runs: int  # runs of the stage this row stands for (its seeds)
    full_seconds: float  # estimated wall time of one full run (nan when unknown)
    state: str
    problems: tuple[str, ...]
    first_loss: float
    last_loss: float
    val_loss: float
    images_per_second: float
    data_wait: float  # share of the training time spent waiting for batches
    peak_memory_bytes: int | None
    peak_memory_source: str
    compile_seconds: float
    wall_seconds: float  # what the smoke itself took

    @property
    def ok(self) -> bool:
        """Whether the row would train in the matrix."""
        return not self.problems

    @property
    def label(self) -> str:
        """``pytorch mobilenetv2 fp32`` (+ dataset, variant, execution where they vary)."""
        s = self.spec
        parts = [s.framework, s.dataset, s.model, s.precision]
        parts += [s.variant] if s.variant != "library" else []
        return " ".join(parts + (["compiled"] if s.compile == "compiled" else []))


@dataclass(frozen=True)
class SmokeReport:
    """Every row, and the stage's estimated wall time on the given slots."""

    stage: str
    rows: list[SmokeRow]
    slots: int
    stage_seconds: float

    @property
    def ok(self) -> bool:
        """Whether every arm of the stage would train."""
        return all(r.ok for r in self.rows)


def row_key(spec: RunSpec) -> tuple:
    """What a row is: a run of the stage without its seed (swept settings kept apart)."""
    return (spec.framework, spec.compile, spec.dataset, spec.model, spec.precision, spec.variant,
            spec.init, spec.perturbation, spec.train_config.model_dump_json())  # fmt: skip


def _split_sizes(ws: Workspace, spec: RunSpec) -> dict[str, int]:
    sizes = read_manifest(ws, spec.dataset).get("sizes", {})
    out = {s: int(sizes.get(s, 0)) for s in ("train", "val", "test")}
    if spec.subset:
        out["train"] = min(out["train"], spec.subset)
    if spec.eval_subset:
        out["val"], out["test"] = (
            min(out["val"], spec.eval_subset),
            min(out["test"], spec.eval_subset),
        )
    return out


def smoke_spec(ws: Workspace, spec: RunSpec, steps: int) -> RunSpec:
    """``spec`` shortened to two epochs of about ``steps / 2`` steps each (whole set at most),
    its warmup the same share of the smoke as of the run (5 of 100 epochs: 0.1 epoch)."""
    t = spec.train_config.training
    per_step = t.batch_size * t.gradient_accumulation_steps
    sizes = _split_sizes(ws, spec)
    subset = min(sizes["train"], max(1, math.ceil(steps / 2)) * per_step)
    evaluate = min(max(sizes["val"], sizes["test"]), EVAL_CAP)
    lr = spec.train_config.lr
    warmup = lr.warmup_epochs * SMOKE_EPOCHS / max(spec.epochs, 1)  # the same share of the run
    train = spec.train_config.model_copy(
        update={"lr": lr.model_copy(update={"warmup_epochs": warmup})}
    )
    update = {"epochs": SMOKE_EPOCHS, "subset": subset, "eval_subset": evaluate, "stage": None}
    # a spec of its own (its hash and id follow its settings: a whole, true run directory)
    return spec.model_copy(update=update | {"train_config": train}).with_hash()


def _run_smoke(ws: Workspace, spec: RunSpec, scratch: Path, timeout: float) -> RunDir:
    rd = RunDir(scratch / spec.run_id)
    rd.write_spec(spec)
    env = os.environ | {"FWBENCH_FRAMEWORK_LOGS": os.environ.get("FWBENCH_FRAMEWORK_LOGS", "0")}
    with open(rd.path / "smoke.log", "w", encoding="utf-8") as log:
        try:
            subprocess.run(
                train_command(rd.path, ws.root), stdout=log, stderr=subprocess.STDOUT,
                env=env, timeout=timeout, check=False,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            rd.set_status("failed", error=f"smoke took over {timeout:.0f} s")
    return rd


def _finite(x: float) -> bool:
    return isinstance(x, int | float) and math.isfinite(x)


def judge(ws: Workspace, full: RunSpec, spec: RunSpec, rd: RunDir, runs: int, wall: float):
    """The row of one finished smoke: its checks, speed, memory and full-run estimate."""
    status, epochs = rd.read_status(), rd.epochs()
    state = status.get("state", "failed")
    problems = []
    if state != "done":
        problems.append(f"{state}: {error_line(rd) or status.get('error') or 'no status'}")
    losses = [e.get("train_loss", math.nan) for e in epochs]
    vals = [e.get("val_loss", math.nan) for e in epochs]
    if losses and not all(_finite(x) for x in losses):
        problems.append("non-finite training loss")
    elif len(losses) >= 2 and not losses[-1] < losses[0]:
        problems.append(f"training loss not falling ({losses[0]:.4g} -> {losses[-1]:.4g})")
    if vals and not all(_finite(x) for x in vals):
        problems.append("non-finite validation loss")
    last = epochs[-1] if epochs else {}
    ips = float(last.get("images_per_second") or math.nan)
    n_train = _split_sizes(ws, spec)["train"] // _per_step(spec) * _per_step(spec)
    train_s = n_train / ips if ips > 0 else math.nan
    data_wait = (
        float(last.get("data_time_seconds", math.nan)) / train_s if train_s > 0 else math.nan
    )
    compile_s = math.nan
    if len(epochs) >= 2:
        compile_s = max(0.0, epochs[0]["epoch_time_seconds"] - epochs[-1]["epoch_time_seconds"])
    return SmokeRow(
        spec=spec,
        runs=runs,
        full_seconds=_full_run_seconds(ws, full, spec, last, train_s, compile_s),
        state=state,
        problems=tuple(problems),
        first_loss=losses[0] if losses else math.nan,
        last_loss=losses[-1] if losses else math.nan,
        val_loss=vals[-1] if vals else math.nan,
        images_per_second=ips,
        data_wait=data_wait,
        peak_memory_bytes=status.get("peak_memory_bytes"),
        peak_memory_source=status.get("peak_memory_source", ""),
        compile_seconds=compile_s,
        wall_seconds=wall,
    )


def _per_step(spec: RunSpec) -> int:
    t = spec.train_config.training
    return t.batch_size * t.gradient_accumulation_steps


def _full_run_seconds(ws, full: RunSpec, spec: RunSpec, last: dict, train_s, compile_s) -> float:
    """One full run: its epochs of training at the smoke's speed, its evaluations, compilation."""
    if not (_finite(train_s) and last):
        return math.nan
    smoke_eval = _split_sizes(ws, spec)["val"]
    eval_per_image = max(0.0, last["epoch_time_seconds"] - train_s) / max(smoke_eval, 1)
    sizes = _split_sizes(ws, full)
    plan = step_plan(full, sizes["train"])
    train_per_epoch = plan.steps_per_epoch * plan.effective_batch / last["images_per_second"]
    evals = full.epochs * sizes["val"] + sizes["test"]
    return full.epochs * train_per_epoch + evals * eval_per_image + (compile_s or 0.0)


def schedule_seconds(durations: list[float], slots: int) -> float:
    """Wall time of ``durations`` on ``slots`` workers, longest first (the executor's order
    is the stage's; this is its estimate)."""
    finish = [0.0] * max(1, slots)
    for d in sorted(durations, reverse=True):
        heapq.heapreplace(finish, finish[0] + d)
    return max(finish)


def slots_for(parallel: int, gpus: int) -> int:
    """Runs that proceed at full speed at once: ``parallel``, at most one per GPU."""
    return max(1, min(parallel, gpus) if gpus > 0 else parallel)


def smoke_stage(
    ws: Workspace,
    stage_name: str,
    *,
    steps: int,
    parallel: int,
    gpus: int,
    only: list[str] | None = None,
    sets: tuple[str, ...] = (),
    config: str | Path | None = None,
    matrix: str | Path | None = None,
    timeout: float = 1800.0,
    keep: Path | None = None,
    on_row=None,
) -> SmokeReport:
    """Smoke every row of ``stage_name`` (after ``only``); estimate the stage's wall time."""
    train, stages = load_configs(ws, config, matrix)
    stage = stages.stage(stage_name)
    overrides = SmokeOptions(sets=tuple(sets))  # ``--set``: the stage's runs as the user will run
    specs = select(expand(stage_name, stage, train, overrides), parse_filters(only or [], stage))
    groups: dict[tuple, list[RunSpec]] = {}
    for s in specs:
        groups.setdefault(row_key(s), []).append(s)
    for members in groups.values():
        check_trainable(ws, members[0])  # unprepared data: one line before anything runs
    scratch = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="fwbench-smoke-"))
    rows = []
    try:
        for members in groups.values():
            full = members[0]
            spec = smoke_spec(ws, full, steps)
            if on_row:
                on_row(spec)
            started = time.perf_counter()
            rd = _run_smoke(ws, spec, scratch, timeout)
            rows.append(judge(ws, full, spec, rd, len(members), time.perf_counter() - started))
    finally:
        if keep is None:
            shutil.rmtree(scratch, ignore_errors=True)
    slots = slots_for(parallel, gpus)
    durations = [r.full_seconds for r in rows for _ in range(r.runs)]
    total = schedule_seconds(durations, slots) if all(map(_finite, durations)) else math.nan
    return SmokeReport(stage_name, rows, slots, total)
