"""Where the epoch loop reports: a small interface, and a fan-out that never breaks a run.

``training/loop.py`` calls four hooks; each sink (the console in ``console.py``, TensorBoard and
MLflow in ``tracking.py``) implements what it needs. A sink that fails (a library missing, a
server down, a full disk) prints one warning line and is switched off; training goes on.
"""

from __future__ import annotations

import sys
from typing import Any

from fwbench.record.runs import RunSpec


class Sink:
    """One destination of a run's progress; every hook is optional (the default does nothing)."""

    name = "sink"

    def start(self, spec: RunSpec, steps_per_epoch: int, first_epoch: int) -> None:
        """Training starts (or resumes) at epoch index ``first_epoch`` (0-based)."""

    def step(self, step: int, epoch: int, loss: float, lr: float, images: int) -> None:
        """One optimizer step finished: its global index, mean loss, LR and image count."""

    def epoch(self, record: dict[str, Any]) -> None:
        """One epoch finished; ``record`` is its ``epochs.jsonl`` line."""

    def close(self, state: str, test: dict[str, Any] | None) -> None:
        """The run ended in ``state``; ``test`` is ``test.json`` when it got that far."""


class Sinks:
    """The loop's view of all sinks: calls each hook on each sink, isolating failures."""

    def __init__(self, sinks: list[Sink], warn=None):
        self.sinks = list(sinks)
        self.warn = warn or (lambda line: print(line, file=sys.stderr, flush=True))

    def _each(self, hook: str, *args: Any) -> None:
        for sink in list(self.sinks):
            try:
                getattr(sink, hook)(*args)
            except Exception as e:  # noqa: BLE001 -- a report must never end a training run
                self.sinks.remove(sink)
                reason = str(e).splitlines()[0] if str(e) else type(e).__name__
                self.warn(f"warning: {sink.name} is off for this run ({reason}); training goes on")

    def start(self, spec: RunSpec, steps_per_epoch: int, first_epoch: int) -> None:
        self._each("start", spec, steps_per_epoch, first_epoch)

    def step(self, step: int, epoch: int, loss: float, lr: float, images: int) -> None:
        self._each("step", step, epoch, loss, lr, images)

    def epoch(self, record: dict[str, Any]) -> None:
        self._each("epoch", record)

    def close(self, state: str, test: dict[str, Any] | None = None) -> None:
        self._each("close", state, test)
