"""Which collected runs an analysis or a report covers: every one, or the runs of the stages
asked with ``--stage``.

A stage's runs are the runs its matrix entry expects (``matrix.stage_runs``, the membership
``collect --stage`` uses), matched by run id: a run two stages share counts in both, a run
started with other settings (``run --set``) in neither.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from fwbench.core.errors import FwbenchError
from fwbench.core.paths import Workspace
from fwbench.study.collect import RUNS_CSV
from fwbench.study.matrix import stage_runs


@dataclass(frozen=True)
class Scope:
    """What an analysis covers, said in one sentence (``text``) by every output."""

    stages: tuple[str, ...]  # asked with --stage; () = every collected run
    recorded: tuple[str, ...]  # the stage names the covered runs were started under
    runs: int  # rows covered
    collected: int  # rows in results/
    # per stage asked: (finished runs collected, runs collected, runs the stage expects)
    counts: dict[str, tuple[int, int, int]] = field(default_factory=dict)

    def text(self) -> str:
        """``Covers only stage vx (--stage vx): 30 of 60 collected runs (vx: 30 of 30 done).``"""
        if not self.stages:
            names = ", ".join(self.recorded) or "none recorded"
            return f"Covers every collected run: {self.runs} runs (stages: {names})."
        flags = " ".join(f"--stage {n}" for n in self.stages)
        each = "; ".join(f"{n}: {d} of {e} done" for n, (d, _, e) in self.counts.items())
        kind = "stage" if len(self.stages) == 1 else "stages"
        return (
            f"Covers only {kind} {', '.join(self.stages)} ({flags}): {self.runs} of "
            f"{self.collected} collected runs ({each})."
        )

    def title(self) -> str:
        """`` (stage vx only)`` for a title; empty for every collected run."""
        if not self.stages:
            return ""
        return f" ({'stage' if len(self.stages) == 1 else 'stages'} {', '.join(self.stages)} only)"

    def unfinished(self) -> list[str]:
        """One line per stage asked that has no finished run among the collected results."""
        return [
            f"stage {name}: no finished run in results/ ({rows} of its {expected} runs "
            "collected, none done); it adds nothing here"
            for name, (done, rows, expected) in self.counts.items()
            if done == 0
        ]


def _recorded(runs: pd.DataFrame) -> tuple[str, ...]:
    return tuple(sorted(runs["stage"].dropna().astype(str).unique())) if "stage" in runs else ()


def every_run(runs: pd.DataFrame) -> Scope:
    """The scope of an analysis of all of ``runs``."""
    return Scope((), _recorded(runs), len(runs), len(runs))


def select_stages(
    ws: Workspace,
    runs: pd.DataFrame,
    epochs: pd.DataFrame | None,
    stages: list[str] | None,
    matrix: Path | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame | None, Scope]:
    """``(runs, epochs, scope)``: the rows of the stages asked (all rows without ``stages``).

    An unknown stage is a user error naming the known ones; so is a selection in which no stage
    has a finished run (an empty analysis would read as a result).
    """
    if not stages:
        return runs, epochs, every_run(runs)
    expected = stage_runs(ws, stages, matrix=matrix)
    ids = {name: {s.run_id for s in specs} for name, specs in expected.items()}
    counts = {}
    for name, members in ids.items():
        rows = runs[runs["run_id"].isin(members)]
        counts[name] = (int((rows["state"] == "done").sum()), len(rows), len(members))
    if not any(done for done, _, _ in counts.values()):
        names = ("stage " if len(counts) == 1 else "stages ") + ", ".join(counts)
        found = "; ".join(f"{n}: {r} of {e} collected" for n, (_, r, e) in counts.items())
        raise FwbenchError(
            f"no finished run of {names} in the collected results ({found}, none done)",
            path=ws.results_dir / RUNS_CSV,
            fix=f"finish them (`fwbench run --stage {' --stage '.join(counts)}`), then "
            "`fwbench collect`",
        )
    members = set().union(*ids.values())
    chosen = runs[runs["run_id"].isin(members)].reset_index(drop=True)
    if epochs is not None and "run_id" in epochs:
        epochs = epochs[epochs["run_id"].isin(members)].reset_index(drop=True)
    scope = Scope(tuple(ids), _recorded(chosen), len(chosen), len(runs), counts)
    return chosen, epochs, scope
