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


class ConsoleSink(Sink):
    """Epoch lines always; the live bar only when ``live`` and stderr is a terminal."""

    name = "console"

    def __init__(self, live: bool = True, stream=None):
        self.stream = stream or sys.stderr
        self.live = live and self.stream.isatty()
        self.bar = self.task = None
        self.epoch_seconds: list[float] = []

    def start(self, spec: RunSpec, steps_per_epoch: int, first_epoch: int) -> None:
        self.spec, self.steps = spec, steps_per_epoch
        if first_epoch:
            self._print(f"{spec.run_id}: resuming after epoch {first_epoch}/{spec.epochs}")
        if self.live:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self.bar = Progress(
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

    def step(self, step: int, epoch: int, loss: float, lr: float, images: int) -> None:
        if self.bar is None:
            return
        if self.task is None:
            desc = f"{self.spec.framework} epoch {epoch + 1}/{self.spec.epochs}"
            self.task = self.bar.add_task(desc, total=self.steps, rate="")
            self._t0, self._done = time.perf_counter(), 0
        self._done += 1
        rate = self._done / max(time.perf_counter() - self._t0, 1e-9)
        self.bar.update(self.task, advance=1, rate=f"{rate:.1f} it/s loss {loss:.4f} lr {lr:.3g}")

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
