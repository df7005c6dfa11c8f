"""Throughput: bare framework loop vs fwbench's train step vs train step + input pipeline.

Four modes per (framework, model, precision, batch size), each on the same device, threads,
precision and determinism switches:

- ``bare``: the minimal idiomatic training loop of the framework on one synthetic batch
  (``frameworks/<name>/bench.py``);
- ``harness``: fwbench's own ``Backend.train_step`` on the same kind of synthetic batch;
- ``harness+pipeline``: that train step fed by fwbench's real input pipeline (a prepared dataset);
- ``pipeline``: the input pipeline alone.

Each framework runs in its own subprocess (``python -m fwbench.frameworks.<name>.bench``), so
this module and ``fwbench bench`` import no framework (and TensorFlow never meets torchvision).
Every repeat runs ``warmup`` untimed steps, then ``steps`` timed ones, timed exactly as the
epoch logs are (:mod:`fwbench.recipe.timing`); the modes take turns repeat by repeat, forward and
backward in alternate turns, so a change in machine load hits all of them alike. Rows report
the median over repeats and the min/max, and each mode's ratio to its reference mode
(harness/bare, pipeline/harness) as the median of the ratios of back-to-back windows.
``harness+pipeline`` reads one continuous stream, as training does (epoch changes included);
``pipeline`` restarts its pipeline before each window so that nothing prefetched in the
background while other modes ran is counted.
"""

from __future__ import annotations

import itertools
import json
import os
import socket
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from fwbench.core.threads import default_workers
from fwbench.recipe.timing import Clock, Stopwatch

MODES = ("bare", "harness", "harness+pipeline", "pipeline")
REFERENCE = {"harness": "bare", "harness+pipeline": "harness", "pipeline": "harness"}
PIPELINE_MODES = ("harness+pipeline", "pipeline")
RESULT_MARK = "FWBENCH_BENCH_ROWS "  # prefix of the one stdout line a framework process returns
ERROR_MARK = "FWBENCH_BENCH_ERROR "  # ... or of the user error it ended with

COLUMNS = (
    "timestamp", "host", "device", "framework", "framework_version", "model", "variant",
    "precision", "batch_size", "input_size", "num_classes", "dataset", "mode",
    "samples_per_sec", "samples_per_sec_min", "samples_per_sec_max",
    "step_ms", "step_ms_min", "step_ms_max", "step_ms_spread", "data_ms",
    "ref_mode", "ratio_to_ref", "compile_s", "param_count", "warmup", "steps", "repeats",
    "tf32", "channels_last", "compile", "execution", "intra_op_threads", "inter_op_threads",
    "num_workers", "deterministic", "determinism", "load_avg_1m",
)  # fmt: skip


@dataclass(frozen=True)
class SpeedSettings:
    """Switches that bias speed, pinned for both arms and recorded in every row.

    Defaults (:func:`default_settings`) aim at the same thing in both arms:
    - ``tf32`` off: ``fp32`` means full FP32 matmuls/convolutions in both (TF enables TF32 by
      default on Ampere+, torch only for convolutions: left alone, the arms would differ).
    - ``channels_last`` on: NHWC is Keras's native layout; PyTorch gets it via channels_last
      (faster for these CNNs on CPU and with AMP on GPU; ``docs/notes/frameworks.md``).
    - the execution mode is not a setting but an axis of the jobs (``BenchJob.compile``).
    - threads: ``threads`` intra-op (``$FWBENCH_THREADS`` else the CPUs this process may use)
      and ``min(threads, 2)`` inter-op, in both frameworks (as the backends set them).
    - ``num_workers``: DataLoader processes for PyTorch (tf.data uses AUTOTUNE):
      :func:`default_workers`.
    - ``deterministic``: the train config's value, as in training runs, applied by every arm's
      own mechanism (``registry.determinism``); rows record what was in effect.
    """

    tf32: bool = False
    channels_last: bool = True
    threads: int = 1
    num_workers: int = 0
    deterministic: bool = True


def default_settings(threads: int, config_workers: int, deterministic: bool) -> SpeedSettings:
    """The documented defaults for a machine with ``threads`` usable CPUs."""
    return SpeedSettings(
        threads=threads,
        num_workers=default_workers(threads, config_workers),
        deterministic=deterministic,
    )


@dataclass(frozen=True)
class BenchJob:
    """One framework subprocess: one (arm, compile mode, model, precision, batch) and its modes.

    ``compile``: ``eager`` (each arm's default execution) or ``compiled`` (torch.compile, XLA
    ``jit_compile``, ``jax.jit``; ``fwbench.registry.arms``).
    """

    framework: str
    model: str
    precision: str
    batch_size: int
    input_size: int
    num_classes: int
    dataset: str
    modes: tuple[str, ...]
    warmup: int
    steps: int
    repeats: int
    settings: SpeedSettings
    variant: str = "library"
    workspace: str = "."
    train_config: str | None = None  # the user's train_config.yaml, if any
    lr: float = 0.01  # constant: small enough that random labels never diverge
    seed: int = 42
    compile: str = "eager"

    def to_json(self) -> str:
        """The job as one JSON string (the subprocess's ``--json-args``)."""
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> BenchJob:
        """Inverse of :meth:`to_json`."""
        data = json.loads(text)
        data["settings"] = SpeedSettings(**data["settings"])
        data["modes"] = tuple(data["modes"])
        return cls(**data)


# --- measurement (framework-free: the framework modules hand in callables) -------------------


@dataclass
class Runner:
    """One mode: where its batches come from and how one step runs (returns its images).

    ``restart``, if given, replaces ``batches`` with a fresh iterator before every window.
    """

    batches: Iterator[Any]
    step: Callable[[Any], int]
    sync: Callable[[], None] = field(default=lambda: None)
    restart: Callable[[], Iterator[Any]] | None = None


@dataclass(frozen=True)
class Repeat:
    """One timed window of ``steps`` steps."""

    seconds: float
    images: int
    steps: int
    data_seconds: float
    warmup_seconds: float = 0.0  # the untimed steps before the window (first: compilation)
    warmup_steps: int = 0


def run_window(runner: Runner, sw: Stopwatch, steps: int) -> None:
    """Run ``steps`` steps of ``runner`` under ``sw``."""
    for _ in range(steps):
        batch = sw.fetch(runner.batches)
        sw.step_done(runner.step(batch))


def measure_modes(
    runners: dict[str, Runner],
    warmup: int,
    steps: int,
    repeats: int,
    clock: Clock = time.perf_counter,
) -> dict[str, list[Repeat]]:
    """Time every runner ``repeats`` times, in turns; each window follows ``warmup`` steps.

    Turns alternate forward and backward (ABBA...), so neither a mode's place in a turn nor a
    steady drift of the machine's speed favours one mode over another.
    """
    out: dict[str, list[Repeat]] = {mode: [] for mode in runners}
    for turn in range(repeats):
        order = list(runners.items())
        for mode, runner in order if turn % 2 == 0 else reversed(order):
            if runner.restart is not None:
                runner.batches = runner.restart()
            sw = Stopwatch(clock, runner.sync)
            run_window(runner, sw, warmup)
            warm = (sw.seconds, sw.steps)
            sw.reset()  # warm-up steps are never part of a measurement
            run_window(runner, sw, steps)
            out[mode].append(Repeat(sw.seconds, sw.images, sw.steps, sw.data_seconds, *warm))
    return out


def summarise(repeats: list[Repeat]) -> dict[str, float]:
    """Median and min/max over repeats of samples/s and step time; median data wait per step.

    ``compile_s``: the first warm-up's excess over as many steady steps (tracing and
    compilation), kept apart from the throughput, which excludes every warm-up step.
    """
    rates = [r.images / r.seconds for r in repeats]
    step_ms = [1000.0 * r.seconds / r.steps for r in repeats]
    data_ms = [1000.0 * r.data_seconds / r.steps for r in repeats]
    first = repeats[0]  # the mode's first warm-up: tracing, compilation, caches
    steady = statistics.median(step_ms) / 1000.0
    return {
        "compile_s": max(0.0, first.warmup_seconds - first.warmup_steps * steady),
        "samples_per_sec": statistics.median(rates),
        "samples_per_sec_min": min(rates),
        "samples_per_sec_max": max(rates),
        "step_ms": statistics.median(step_ms),
        "step_ms_min": min(step_ms),
        "step_ms_max": max(step_ms),
        "step_ms_spread": max(step_ms) - min(step_ms),
        "data_ms": statistics.median(data_ms),
    }


def batch_images(batch: Any) -> int:
    """Images in an ``(x, y)`` batch of either framework."""
    return int(batch[1].shape[0])


def endless_batches(backend: Any, first_epoch: int = 0) -> Iterator[Any]:
    """The backend's training micro-batches, epoch after epoch (epoch changes included)."""
    for epoch in itertools.count(first_epoch):
        yield from backend.train_batches(epoch)


def harness_runners(
    backend: Any, synthetic: Any, modes: tuple[str, ...], lr: float, sync: Callable[[], None]
) -> dict[str, Runner]:
    """Runners of the modes that use fwbench's own code (``backend`` is built)."""

    def step(batch: Any) -> int:  # the result read back: the step ends on the host
        return backend.read_steps([backend.train_step([batch], lr)])[0].count

    runners: dict[str, Runner] = {}
    if "harness" in modes:
        runners["harness"] = Runner(itertools.repeat(synthetic), step, sync)
    if "harness+pipeline" in modes:  # one stream, as in training
        runners["harness+pipeline"] = Runner(endless_batches(backend), step, sync)
    if "pipeline" in modes:
        # A fresh pipeline per window: what DataLoader workers or tf.data prefetch buffered
        # while other modes ran must not count; its start-up falls in the warm-up steps.
        epochs = itertools.count(10_000, 1_000)
        restart = lambda: endless_batches(backend, next(epochs))  # noqa: E731
        runners["pipeline"] = Runner(iter(()), batch_images, restart=restart)
    return runners


def job_rows(job: BenchJob, results: dict[str, list[Repeat]], facts: dict[str, Any]) -> list[dict]:
    """One CSV row per mode: identity, summary, settings in effect (``facts``), machine."""
    base = {
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "host": socket.gethostname(),
        "framework": job.framework,
        "compile": job.compile,
        "model": job.model,
        "variant": job.variant,
        "precision": job.precision,
        "batch_size": job.batch_size,
        "input_size": job.input_size,
        "num_classes": job.num_classes,
        "dataset": job.dataset,
        "warmup": job.warmup,
        "steps": job.steps,
        "repeats": job.repeats,
        "load_avg_1m": round(os.getloadavg()[0], 2),
    } | facts
    rows = [
        base | {"mode": m} | summarise(results[m]) | paired_ratio(results, m)
        for m in MODES
        if m in results
    ]
    return [{c: row.get(c) for c in COLUMNS} for row in rows]


def paired_ratio(results: dict[str, list[Repeat]], mode: str) -> dict[str, Any]:
    """Median over repeats of this mode's samples/s over its reference mode's in the same turn.

    Repeat ``r`` of two modes ran back to back, so the ratio of the pair cancels most of a
    change in machine load that the ratio of two medians would keep.
    """
    ref = REFERENCE.get(mode)
    if ref not in results:
        return {"ref_mode": None, "ratio_to_ref": None}
    pairs = zip(results[mode], results[ref], strict=True)
    ratio = [(a.images / a.seconds) / (b.images / b.seconds) for a, b in pairs]
    return {"ref_mode": ref, "ratio_to_ref": statistics.median(ratio)}


def synthetic_arrays(n: int, size: int, num_classes: int, seed: int):
    """``n`` random uint8 NHWC images and int64 labels (inputs for builds without a dataset)."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, size, size, 3), dtype=np.uint8)
    return images, rng.integers(0, num_classes, size=n).astype(np.int64)


def with_settings(job: BenchJob, **changes: Any) -> BenchJob:
    """``job`` with some of its speed settings changed."""
    return replace(job, settings=replace(job.settings, **changes))


# --- what a framework process builds from (framework-free) ----------------------------------


def job_spec_and_inputs(job: BenchJob):
    """The RunSpec and RunInputs of ``job``: a prepared dataset if a pipeline mode is asked for,
    else in-memory synthetic arrays (so ``bare``/``harness`` need no dataset)."""
    from fwbench.config.train import workspace_train_config
    from fwbench.core.paths import Workspace
    from fwbench.data.store import SplitArrays
    from fwbench.recipe.inputs import LoaderSettings, RunInputs, load_inputs
    from fwbench.recipe.schedule import plan_steps
    from fwbench.record.runs import make_spec

    ws = Workspace.from_env(job.workspace, create=True)
    cfg = workspace_train_config(ws, job.train_config)
    training = cfg.training.model_copy(
        update={
            "batch_size": job.batch_size,
            "gradient_accumulation_steps": 1,
            "deterministic": job.settings.deterministic,
            "label_smoothing": 0.0,
        }
    )
    cfg = cfg.model_copy(update={"training": training})
    spec = make_spec(
        cfg,
        dataset=job.dataset,
        model=job.model,
        precision=job.precision,
        seed=job.seed,
        framework=job.framework,
        variant=job.variant,
        epochs_override=1,
        num_workers=job.settings.num_workers,
        compile_mode=job.compile,
    ).model_copy(update={"input_size": job.input_size})
    if any(m in job.modes for m in PIPELINE_MODES):
        return spec, load_inputs(ws, spec)
    n = 2 * job.batch_size
    images, labels = synthetic_arrays(n, job.input_size, job.num_classes, job.seed)
    arrays = SplitArrays(images, labels)
    _, aug, _ = cfg.for_dataset(job.dataset)
    t = cfg.training
    inputs = RunInputs(
        train=arrays,
        val=arrays,
        test=arrays,
        mean=np.full(3, 0.5, np.float32),
        std=np.full(3, 0.25, np.float32),
        augmentation=aug,
        batch_size=job.batch_size,
        eval_batch_size=job.batch_size,
        seed=job.seed,
        num_classes=job.num_classes,
        plan=plan_steps(n, job.batch_size, 1, 1, 0.0),
        loader=LoaderSettings(0, t.pin_memory, t.persistent_workers, t.prefetch_factor),
    )
    return spec, inputs


def framework_main(argv: list[str], run: Callable[[BenchJob], list[dict]]) -> None:
    """Entry point of ``python -m fwbench.frameworks.<name>.bench --json-args JOB``."""
    if len(argv) != 2 or argv[0] != "--json-args":
        raise SystemExit("usage: python -m fwbench.frameworks.<name>.bench --json-args JOB")
    from fwbench.core.errors import FwbenchError

    try:
        rows = run(BenchJob.from_json(argv[1]))
    except FwbenchError as e:
        print(ERROR_MARK + json.dumps({"what": e.what, "path": e.path, "fix": e.fix}), flush=True)
        raise SystemExit(e.exit_code) from None
    print(RESULT_MARK + json.dumps(rows, default=str), flush=True)
