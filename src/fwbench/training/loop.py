"""The one epoch loop both arms share (seed phase 5).

Per optimizer step: the LR from ``fwbench.recipe.schedule.lr_at`` (warmup + cosine, one function
for both arms), ``accumulation`` micro-batches fetched from the arm's pipeline (the time spent
waiting for them is the epoch's ``data_time_seconds``), one ``backend.train_step``, whose loss
and hits stay on the device until a batch of steps is read (``READ_EVERY_STEPS``). A run whose
loss is non-finite, or stays exploded over a window of steps or above chance for epochs after
warmup, ends as ``diverged`` (``fwbench.recipe.divergence``). Per epoch: validation, one line of
``epochs.jsonl``, the best checkpoint by ``val_accuracy`` (first best kept on ties) and the last
checkpoint, which carries the model, optimizer, loss scaler, RNG state, divergence window,
finished epochs and step position so that a killed run resumes from its last finished epoch and
ends exactly as an uninterrupted one. After the last epoch the best checkpoint is evaluated on
the test split -> ``test.json``.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

from fwbench.core.errors import FwbenchError, describe
from fwbench.core.fileio import append_jsonl, write_json, write_text
from fwbench.core.interrupts import point
from fwbench.core.paths import Workspace
from fwbench.frameworks.base import (
    Backend,
    StepResult,
    host_rng_state,
    load_backend,
    set_host_rng_state,
)
from fwbench.frameworks.env import host_info
from fwbench.recipe import metrics
from fwbench.recipe.divergence import Diverged, DivergenceWatch
from fwbench.recipe.inputs import RunInputs, load_inputs
from fwbench.recipe.schedule import lr_at
from fwbench.recipe.timing import Stopwatch
from fwbench.record.guards import free_reserve, refuse_if_live, reserve_space
from fwbench.record.runs import RunDir, RunSpec
from fwbench.registry.arms import get_arm
from fwbench.training.console import ConsoleSink, epoch_line, warmup_warning
from fwbench.training.preflight import interrupted, pin_threads, verify_run_data
from fwbench.training.sinks import Sinks
from fwbench.training.tracking import tracking_sinks

FINAL_STATES = ("done", "diverged")
# Step results stay on the device and are read in batches: every READ_EVERY_STEPS steps, or
# sooner once READ_EVERY_SECONDS have passed (the console and TensorBoard stay live on slow
# machines); never once per step, which would make the host wait for the device every step.
READ_EVERY_STEPS = 50
READ_EVERY_SECONDS = 2.0
StepHook = Callable[[int, StepResult], None]


def train_run(
    run_dir: RunDir,
    ws: Workspace,
    *,
    backend: Backend | None = None,
    show_progress: bool = True,
    on_step: StepHook | None = None,
) -> str:
    """Train (or resume) the run in ``run_dir`` from its ``spec.json``; return the final state.

    A run already ``done`` or ``diverged`` is left alone. Any exception marks the run ``failed``
    with its error text and is re-raised.
    """
    spec = run_dir.read_spec()
    state = run_dir.state
    if state in FINAL_STATES:
        return state
    refuse_if_live(run_dir)
    run_dir.set_status("running", run_id=spec.run_id, framework=spec.framework)
    reserve = reserve_space(run_dir)
    console = ConsoleSink(live=show_progress)
    console.prepare(spec)  # a terminal shows the bar now, not after the framework has loaded
    try:
        verify_run_data(ws, spec, run_dir)
        pin_threads(spec, run_dir)
        t = spec.train_config.training
        backend = backend or load_backend(spec.framework, deterministic=t.deterministic)
        return _Trainer(run_dir, ws, spec, backend, console, on_step).run()
    except KeyboardInterrupt:
        free_reserve(reserve)
        console.close("failed", None)
        raise interrupted(run_dir, spec) from None
    except BaseException as e:
        free_reserve(reserve)  # a full disk still has room for the final state
        console.close("failed", None)
        error = describe(e) if isinstance(e, OSError) else f"{type(e).__name__}: {e}"
        run_dir.set_status("failed", error=error, traceback=traceback.format_exc()[-4000:])
        _log(run_dir, f"failed: {error}")
        raise
    finally:
        free_reserve(reserve)


def _log(run_dir: RunDir, message: str) -> None:
    run_dir.path.mkdir(parents=True, exist_ok=True)
    with open(run_dir.log_path, "a", encoding="utf-8") as f:
        f.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {message}\n")


def stderr_is_log(run_dir: RunDir) -> bool:
    """Whether stderr is this run's ``train.log`` (an executor launched it): what the console
    prints lands there already, and writing it again would show every epoch twice."""
    try:
        err, log = os.fstat(sys.stderr.fileno()), os.stat(run_dir.log_path)
    except (OSError, ValueError, AttributeError):
        return False
    return (err.st_dev, err.st_ino) == (log.st_dev, log.st_ino)


class _Trainer:
    """One run's state while it trains (the loop itself lives in :meth:`run`)."""

    def __init__(self, run_dir, ws, spec: RunSpec, backend: Backend, console, on_step):
        self.run_dir, self.ws, self.spec, self.backend = run_dir, ws, spec, backend
        self.on_step = on_step
        # console line per epoch (+ live bar on a TTY), TensorBoard, MLflow if configured
        self.sinks = Sinks([console, *tracking_sinks(run_dir, ws, spec)])
        self.best_path = run_dir.checkpoints / backend.best_file
        self.last_path = run_dir.checkpoints / backend.last_file
        self.previous_path = run_dir.checkpoints / f"previous-{backend.last_file}"

    def run(self) -> str:
        facts = self.backend.setup(self.spec)
        self.inputs: RunInputs = load_inputs(self.ws, self.spec)
        plan, cfg = self.inputs.plan, self.spec.train_config
        self.watch = DivergenceWatch(
            cfg.training.divergence, self.inputs.num_classes, plan.warmup_steps
        )
        _log(self.run_dir, cfg.lr.describe(plan.effective_batch))
        short = warmup_warning(plan.warmup_steps, plan.total_steps)
        if short:
            print(short, file=sys.stderr, flush=True)
            if not stderr_is_log(self.run_dir):
                _log(self.run_dir, short)
        self.backend.build(self.spec, self.inputs)
        meta = self._resume()
        self.watch.restore(meta.get("divergence_window", []))
        self._write_env(facts, resumed_from=meta["epoch"] if meta["records"] else None)
        records: list[dict[str, Any]] = meta["records"]
        best = {"epoch": meta["best_epoch"], "val_accuracy": meta["best_val_accuracy"]}
        sinks = self.sinks
        sinks.start(self.spec, self.inputs.plan.steps_per_epoch, len(records))
        try:
            for epoch in range(len(records), self.spec.epochs):
                try:
                    record = self._epoch(epoch)
                except Diverged as d:
                    sinks.close("diverged")
                    return self._diverged(d)
                if best["epoch"] is None or record["val_accuracy"] > best["val_accuracy"]:
                    best = {"epoch": epoch, "val_accuracy": record["val_accuracy"]}
                    self.backend.save_best(self.best_path)
                records.append(record)
                if self.last_path.exists():  # keep two: the previous one is the fallback
                    os.replace(self.last_path, self.previous_path)
                self.backend.save_last(self.last_path, self._meta(epoch, records, best))
                append_jsonl(self.run_dir.epochs_path, record)
                point("epoch")
                if not stderr_is_log(self.run_dir):  # else the console's line is there
                    _log(self.run_dir, epoch_line(self.spec, record, None))
                sinks.epoch(record)
                try:  # after the epoch's line is written: the evidence stays in epochs.jsonl
                    self._check_epoch(records)
                except Diverged as d:
                    sinks.close("diverged")
                    return self._diverged(d)
            state = self._finish(best)
        except BaseException:
            sinks.close("failed")
            raise
        sinks.close(state, self.run_dir.test_metrics())
        return state

    def _check_epoch(self, records: list[dict[str, Any]]) -> None:
        if self.spec.train_config.training.stop_on_divergence:
            self.watch.check_epoch(records, self.inputs.plan.steps_per_epoch)
        else:  # off: only a non-finite loss ends the run (NaN weights cannot recover)
            last = records[-1]
            self.watch.check_finite(last["epoch"] - 1, None, last["val_loss"], "validation")

    def _diverged(self, d: Diverged) -> str:
        _log(self.run_dir, f"diverged: {d}")
        self.run_dir.set_status(
            "diverged",
            error=str(d),
            divergence_reason=str(d),  # the rule, the value and where (epoch, step)
            diverged_epoch=d.epoch + 1,
            diverged_step=d.step,
            **self._peak_memory(),
        )
        return "diverged"

    # --- resume -----------------------------------------------------------------------------
    def _meta(self, epoch: int, records: list, best: dict) -> dict[str, Any]:
        return {
            "epoch": epoch,
            "global_step": (epoch + 1) * self.inputs.plan.steps_per_epoch,
            "records": records,
            "best_epoch": best["epoch"],
            "best_val_accuracy": best["val_accuracy"],
            "divergence_window": self.watch.state(),  # a resumed run is judged the same
            "rng": host_rng_state(),
            "config_hash": self.spec.config_hash,
        }

    def _resume(self) -> dict[str, Any]:
        """Restore the last checkpoint if any; make ``epochs.jsonl`` match its epochs."""
        meta: dict[str, Any] = {"epoch": -1, "records": [], "best_epoch": None}
        meta["best_val_accuracy"] = None
        loaded = self._load_checkpoint()
        if loaded is not None:
            meta = loaded
            if meta.get("config_hash") != self.spec.config_hash:
                raise FwbenchError(
                    "last checkpoint belongs to other settings",
                    path=self.last_path,
                    fix="delete the run directory to start over",
                )
            set_host_rng_state(meta["rng"])
            _log(self.run_dir, f"resuming after epoch {meta['epoch'] + 1}")  # counted from 1
        # a run killed between its checkpoint and its epochs line (or after it) is made whole
        lines = "".join(_jsonl_line(r) for r in meta["records"])
        write_text(self.run_dir.epochs_path, lines)
        return meta

    def _load_checkpoint(self) -> dict[str, Any] | None:
        """The last checkpoint's meta (its state restored); if it cannot be read, the previous
        one's; if neither, None with the model built afresh (the run restarts). Each fallback
        is a line on stderr and in train.log."""
        tried = [p for p in (self.last_path, self.previous_path) if p.exists()]
        for n, path in enumerate(tried):
            try:
                meta = self.backend.load_last(path)
                if not isinstance(meta, dict) or not isinstance(meta.get("records"), list):
                    raise ValueError("no run state in it")
                return meta
            except (KeyboardInterrupt, FwbenchError):
                raise
            except Exception as e:  # truncated or damaged: any reader's error
                then = "the previous checkpoint" if n + 1 < len(tried) else "epoch 1 (restart)"
                self._say(
                    f"checkpoint {path.name} cannot be read ({type(e).__name__}: "
                    f"{str(e).splitlines()[0][:200] if str(e) else 'no detail'}); "
                    f"resuming from {then}"
                )
        if tried:  # a failed load may have changed part of the model: build it again
            self.backend.build(self.spec, self.inputs)
        return None

    def _say(self, message: str) -> None:
        print(f"{self.spec.run_id}: {message}", file=sys.stderr, flush=True)
        _log(self.run_dir, message)

    # --- one epoch --------------------------------------------------------------------------
    def _epoch(self, epoch: int) -> dict[str, Any]:
        plan, cfg = self.inputs.plan, self.spec.train_config
        batches = self.backend.train_batches(epoch)
        self._sums = {"loss": 0.0, "correct": 0, "count": 0, "micro": 0}
        pending: list[tuple[int, float, StepResult]] = []
        lr, start, watch = 0.0, time.perf_counter(), Stopwatch()  # same timing as `fwbench bench`
        last_read = start
        for i in range(plan.steps_per_epoch):
            step = epoch * plan.steps_per_epoch + i
            lr = lr_at(step, cfg.lr, plan)
            micro_batches = watch.fetch_many(batches, plan.accumulation)
            pending.append((step, lr, self.backend.train_step(micro_batches, lr)))
            watch.step_done(pending[-1][2].count)
            if len(pending) >= READ_EVERY_STEPS or watch.ended - last_read >= READ_EVERY_SECONDS:
                self._read(epoch, pending)
                pending, last_read = [], time.perf_counter()
        self._read(epoch, pending)
        watch.settle()  # the device has finished the epoch's steps: the clock ends here
        del batches
        sums = self._sums
        val = self.backend.evaluate("val")
        labels, n_cls = self.inputs.val.labels, self.inputs.num_classes
        return {
            "epoch": epoch + 1,
            "train_loss": sums["loss"] / sums["micro"],
            "train_accuracy": sums["correct"] / sums["count"],
            "val_loss": val.loss,
            "val_accuracy": metrics.accuracy(labels, val.predictions),
            "val_macro_f1": metrics.macro_f1(labels, val.predictions, n_cls),
            "epoch_time_seconds": time.perf_counter() - start,
            "learning_rate": lr,
            "images_per_second": watch.images_per_second,
            "data_time_seconds": watch.data_seconds,
        }

    def _read(self, epoch: int, pending: list[tuple[int, float, StepResult]]) -> None:
        """Read ``pending`` step results to the host (one copy), then check and report each."""
        if not pending:
            return
        plan, cfg = self.inputs.plan, self.spec.train_config
        results = self.backend.read_steps([r for _, _, r in pending])
        for (step, lr, _), result in zip(pending, results, strict=True):
            loss = result.loss_sum / plan.accumulation  # the step's mean loss
            if cfg.training.stop_on_divergence:
                self.watch.check_step(epoch, step, loss)
            else:
                self.watch.check_finite(epoch, step, loss)
            self._sums["loss"] += result.loss_sum
            self._sums["correct"] += result.correct
            self._sums["count"] += result.count
            self._sums["micro"] += plan.accumulation
            if self.on_step:
                self.on_step(step, result)
            self.sinks.step(step, epoch, loss, lr, result.count)

    # --- the end ----------------------------------------------------------------------------
    def _finish(self, best: dict) -> str:
        self.backend.load_best(self.best_path)
        test = self.backend.evaluate("test")
        labels, n_cls = self.inputs.test.labels, self.inputs.num_classes
        report = metrics.classification_report(labels, test.probabilities, test.loss, n_cls)
        report |= {
            "confusion_matrix": metrics.confusion(labels, test.predictions, n_cls),
            "best_epoch": best["epoch"] + 1,
            "best_val_accuracy": best["val_accuracy"],
            "checkpoint": f"checkpoints/{self.backend.best_file}",
        }
        write_json(self.run_dir.test_path, report)
        self.run_dir.set_status(
            "done",
            epochs_done=self.spec.epochs,
            best_epoch=best["epoch"] + 1,
            test_accuracy=report["accuracy"],
            **self._peak_memory(),
        )
        _log(self.run_dir, f"done: test accuracy {report['accuracy']:.4f}")
        return "done"

    def _peak_memory(self) -> dict[str, Any]:
        """Peak device memory of this process (the host's peak RSS where there is no device)."""
        peak, source = self.backend.peak_memory()
        if peak is None:
            import resource

            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
            source = "peak RSS (host)"
        return {"peak_memory_bytes": int(peak), "peak_memory_source": source}

    def _write_env(self, facts: dict[str, Any], resumed_from: int | None) -> None:
        fw = importlib.import_module(get_arm(self.spec.framework).module("envinfo"))
        plan = self.inputs.plan
        env = host_info() | {
            "framework": self.spec.framework,
            "framework_info": fw.info(),
            "run": facts
            | {
                "precision": self.spec.precision,
                # the setting (auto | float16 | bfloat16); amp_dtype is what it resolved to
                "amp_dtype_setting": self.spec.train_config.training.amp_dtype,
                "seed": self.spec.seed,
                # the rule asked for; ``deterministic``/``determinism`` (from the arm): in effect
                "deterministic_setting": self.spec.train_config.training.deterministic,
                "num_workers": self.inputs.loader.num_workers,
                "steps_per_epoch": plan.steps_per_epoch,
                "warmup_steps": plan.warmup_steps,
                "total_steps": plan.total_steps,
                "effective_batch": plan.effective_batch,
                "peak_lr": self.spec.train_config.lr.peak_lr(plan.effective_batch),
                "lr_rule": self.spec.train_config.lr.describe(plan.effective_batch),
                "train_images": len(self.inputs.train),
                "val_images": len(self.inputs.val),
                "test_images": len(self.inputs.test),
                "train_images_per_epoch": self.inputs.train_images_per_epoch,
                "resumed_from_epoch": None if resumed_from is None else resumed_from + 1,
            },
            "frameworks_imported": sorted(
                m
                for m in ("torch", "torchvision", "tensorflow", "jax", "keras")
                if m in sys.modules
            ),
        }
        write_json(self.run_dir.env_path, env)


def _jsonl_line(record: dict) -> str:
    return json.dumps(record, default=str) + "\n"
