"""One way to time a training loop, shared by the epoch logs (``fwbench.training.loop``) and
``bench``.

Definitions, identical wherever fwbench reports a speed:

- **Clock**: ``time.perf_counter`` (monotonic, sub-microsecond); injectable for tests.
- **Data wait**: wall time spent blocked in ``next()`` on the input pipeline. Work a pipeline
  does in the background (DataLoader workers, tf.data prefetch) while a step computes is not
  waiting and is not counted.
- **Step end**: the moment the step's result is on the host. ``sync`` runs first (e.g.
  ``torch.cuda.synchronize``, or reading the step's loss). The training loop reads its steps'
  results in batches instead, so its window ends after the last read (:meth:`Stopwatch.settle`).
- **Step time**: from the start of the step's first fetch to its end (data wait included).
- **Images per second**: images / wall time from the first fetch to the last step end, so
  anything the loop does between steps (LR schedule, progress bar) is part of the cost.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TypeVar

T = TypeVar("T")
Clock = Callable[[], float]


def _no_sync() -> None:
    return None


class Stopwatch:
    """Times a loop of ``fetch`` ... ``step_done`` pairs; :meth:`reset` starts a new window."""

    def __init__(self, clock: Clock = time.perf_counter, sync: Callable[[], None] = _no_sync):
        self.clock, self.sync = clock, sync
        self.reset()

    def reset(self) -> None:
        """Forget everything measured so far (call after warm-up steps)."""
        self.started: float | None = None
        self.ended: float | None = None
        self.data_seconds = 0.0
        self.images = 0
        self.steps = 0
        self.step_seconds: list[float] = []
        self._step_start: float | None = None

    def fetch(self, batches: Iterator[T]) -> T:
        """``next(batches)``, counting the time blocked in it as data wait."""
        t0 = self.clock()
        if self.started is None:
            self.started = t0
        if self._step_start is None:
            self._step_start = t0
        item = next(batches)
        self.data_seconds += self.clock() - t0
        return item

    def fetch_many(self, batches: Iterator[T], n: int) -> list[T]:
        """The ``n`` micro-batches of one optimizer step (one data wait per fetch)."""
        return [self.fetch(batches) for _ in range(n)]

    def step_done(self, images: int) -> float:
        """Mark the end of a step of ``images`` images (after ``sync``); return its seconds."""
        self.sync()
        t = self.clock()
        start = t if self._step_start is None else self._step_start
        if self.started is None:
            self.started = start
        self.step_seconds.append(t - start)
        self._step_start = None
        self.ended = t
        self.images += images
        self.steps += 1
        return t - start

    def settle(self) -> None:
        """End the window now: the device has caught up (after a read of the step results)."""
        if self.started is not None:
            self.ended = self.clock()

    @property
    def seconds(self) -> float:
        """Wall time from the first fetch to the last step end (0 before any step)."""
        if self.started is None or self.ended is None:
            return 0.0
        return self.ended - self.started

    @property
    def images_per_second(self) -> float:
        """Images over :attr:`seconds` (0 when nothing was timed)."""
        return self.images / self.seconds if self.seconds > 0 else 0.0
