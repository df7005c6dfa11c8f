"""What a person watching a run sees: one persistent line per epoch, and a live bar on a TTY.

The epoch line is plain text on stderr, so it also lands in Slurm logs, CI output and
``train.log`` (where executors send it)::

    pytorch epoch 3/10  train loss 1.2345 acc 0.5432  val loss 1.1111 acc 0.6000  1234 img/s
    12.3 s  ETA 1:26    (one line; wrapped here)

On a terminal a rich progress bar shows the current epoch's steps, it/s and ETA, and is
removed when the epoch ends (its line stays).
"""

from __future__ import annotations

import sys
import time
from typing import Any

from fwbench.record.runs import RunSpec
from fwbench.training.sinks import Sink


def duration(seconds: float) -> str:
    """``83`` -> ``1:23``; ``3725`` -> ``1:02:05``."""
    s = int(round(seconds))
    h, rest = divmod(s, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


def epoch_line(spec: RunSpec, record: dict[str, Any], eta_seconds: float | None) -> str:
    """The one line an epoch leaves on the console (values rounded for reading)."""
    eta = "" if eta_seconds is None else f"  ETA {duration(eta_seconds)}"
    return (
        f"{spec.framework} epoch {record['epoch']}/{spec.epochs}"
        f"  train loss {record['train_loss']:.4f} acc {record['train_accuracy']:.4f}"
        f"  val loss {record['val_loss']:.4f} acc {record['val_accuracy']:.4f}"
        f"  {record['images_per_second']:.0f} img/s  {record['epoch_time_seconds']:.1f} s{eta}"
    )


def warmup_warning(warmup_steps: int, total_steps: int) -> str | None:
    """The line that says the LR never reaches its peak (warmup as long as training, or longer),
    or None when warmup ends before the last step."""
    if warmup_steps < total_steps or warmup_steps == 0:
        return None
    return (
        f"warning: LR warmup ({warmup_steps} steps) is as long as training ({total_steps} steps): "
        "the peak LR is never reached; lower lr.warmup_epochs or train more epochs"
    )


class ConsoleSink(Sink):
    """Epoch lines always; the live bar only when ``live`` and stderr is a terminal."""

    name = "console"

    def __init__(self, live: bool = True, stream=None):
        self.stream = stream or sys.stderr
        self.live = live and self.stream.isatty()
        self.bar = self.task = None
        self.epoch_seconds: list[float] = []

    def prepare(self, spec: RunSpec) -> None:
        """Before the framework, data and model load (seconds): on a terminal the bar appears
        at once, with a spinner saying what is going on."""
        self.spec = spec
        if not self.live or self.bar is not None:
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.bar = Progress(
            SpinnerColumn(),
            "{task.description}",
            BarColumn(),
            MofNCompleteColumn(),
            "{task.fields[rate]}",
            TimeElapsedColumn(),
            "ETA",
            TimeRemainingColumn(),
            console=Console(file=self.stream, highlight=False),
            transient=True,
        )
        self.bar.start()
        self.task = self.bar.add_task(
            f"{spec.framework}: loading the framework, data and model", total=None, rate=""
        )

    def start(self, spec: RunSpec, steps_per_epoch: int, first_epoch: int) -> None:
        self.spec, self.steps = spec, steps_per_epoch
        if first_epoch:
            self._print(f"{spec.run_id}: resuming after epoch {first_epoch}/{spec.epochs}")
        if self.live:
            self.prepare(spec)
            self.bar.remove_task(self.task)
            self._new_task(first_epoch)  # the bar shows before the first (slowest) step ends

    def _new_task(self, epoch: int) -> None:
        desc = f"{self.spec.framework} epoch {epoch + 1}/{self.spec.epochs}"
        self.task = self.bar.add_task(desc, total=self.steps, rate="starting")
        self._t0, self._done, self._images = None, 0, 0

    def step(self, step: int, epoch: int, loss: float, lr: float, images: int) -> None:
        if self.bar is None:
            return
        if self.task is None:
            self._new_task(epoch)
        self._done += 1
        self.bar.update(self.task, advance=1, rate=self._rate(loss, lr, images))

    def _rate(self, loss: float, lr: float, images: int) -> str:
        """``12.3 it/s 394 img/s loss 1.2345 lr 0.0031``. Rates are timed from the end of the
        epoch's first step (its time is mostly start-up), so they appear from the second on;
        during linear warmup the first step's LR is 0, shown as ``lr warmup``."""
        now = time.perf_counter()
        if self._t0 is None:
            self._t0 = now
            rate = ""
        else:
            self._images += images
            seconds = max(now - self._t0, 1e-6)
            rate = f"{(self._done - 1) / seconds:.1f} it/s {self._images / seconds:.0f} img/s "
        lr_text = f"lr {lr:.3g}" if lr > 0 else "lr warmup"
        return f"{rate}loss {loss:.4f} {lr_text}"

    def epoch(self, record: dict[str, Any]) -> None:
        if self.bar is not None and self.task is not None:
            self.bar.remove_task(self.task)
            self.task = None
        self.epoch_seconds.append(record["epoch_time_seconds"])
        left = self.spec.epochs - record["epoch"]
        recent = self.epoch_seconds[-3:]
        self._print(epoch_line(self.spec, record, left * sum(recent) / len(recent)))

    def close(self, state: str, test: dict[str, Any] | None) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None

    def _print(self, line: str) -> None:
        if self.bar is not None:
            self.bar.console.print(line, highlight=False, markup=False, soft_wrap=True)
        else:
            print(line, file=self.stream, flush=True)
