"""Which runs' timing can be compared: a run that ran while another ran on its host shared the
machine (CPU cores, memory bandwidth, a GPU), so its epoch time says as much about its
neighbour as about its framework. Speed verdicts leave such runs out, with the reason.

The record is the run's own: ``status.json`` stamps ``started_at`` / ``finished_at`` and the
host, and the 1-minute load average at both ends (``load_avg_start`` / ``load_avg_end``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SPEED_METRICS = ("epoch_time_s", "images_per_second")
OVERLAPS = "overlapping_runs"


def overlapping_runs(runs: pd.DataFrame) -> pd.Series:
    """Per run, how many other runs of ``runs`` ran on the same host at the same time.

    NaN where a run's start, end or host is not recorded (nothing can be said).
    """
    out = pd.Series(np.nan, index=runs.index, dtype="float64")
    if not {"started_at", "finished_at", "host"} <= set(runs.columns):
        return out
    start = pd.to_numeric(runs["started_at"], errors="coerce")
    end = pd.to_numeric(runs["finished_at"], errors="coerce")
    known = start.notna() & end.notna() & runs["host"].notna()
    for _, group in runs[known].groupby("host"):
        s, e = start[group.index].to_numpy(), end[group.index].to_numpy()
        together = (s[:, None] < e[None, :]) & (s[None, :] < e[:, None])
        out[group.index] = together.sum(axis=1) - 1  # not itself
    return out


def with_overlaps(runs: pd.DataFrame) -> pd.DataFrame:
    """``runs`` with the ``overlapping_runs`` column."""
    return runs.assign(**{OVERLAPS: overlapping_runs(runs)})


def shared_note(overlaps: pd.Series) -> str | None:
    """The one-line reason a speed comparison is left out, or None when its timing is clean."""
    shared = int((overlaps.fillna(0) > 0).sum())
    if not shared:
        return None
    return (
        f"timing not compared: {shared} of {len(overlaps)} runs ran beside another run "
        "on their host"
    )


def load_text(runs: pd.DataFrame) -> str | None:
    """``load average 0.4-3.9 at start, 1.2-4.1 at end`` over ``runs``, or None."""
    parts = []
    for col, when in (("load_avg_start", "at start"), ("load_avg_end", "at end")):
        values = pd.to_numeric(runs.get(col, pd.Series(dtype=float)), errors="coerce").dropna()
        if len(values):
            parts.append(f"{values.min():.1f}–{values.max():.1f} {when}")
    return f"1-minute load average {', '.join(parts)}" if parts else None
