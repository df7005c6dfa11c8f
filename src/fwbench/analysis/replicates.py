"""Which runs count as replicates, and how many of the others each cell and arm leaves out.

Seeds are the replicate unit. Only runs in state ``done`` with test metrics count; diverged,
failed, interrupted, corrupt, running and pending runs are counted and excluded from every test.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from fwbench.registry.metric_info import METRICS

# "settings": the swept train-config keys of a sweep (``results.swept_settings``), "" otherwise.
CELL = ["dataset", "model", "precision", "variant", "settings"]


def cell_name(key: tuple | dict) -> str:
    """``dataset/model/precision``, plus ``/variant`` unless the library build and the swept
    settings when there are any (``cifar10/resnet50/fp32/lr.base_lr=0.05``)."""
    if hasattr(key, "get"):  # a dict or a table row; rows of older tables lack "settings"
        values = {c: key.get(c) for c in CELL}
    else:  # a groupby key, in CELL order
        values = dict(zip(CELL, key, strict=False))
    shown = [v for c, v in values.items() if not (c == "variant" and v == "library")]
    return "/".join(str(v) for v in shown if v is not None and str(v) not in ("", "nan", "<NA>"))


STATES = ("done", "running", "interrupted", "failed", "diverged", "corrupt", "pending")


def with_cell_columns(runs: pd.DataFrame) -> pd.DataFrame:
    """``runs`` with every CELL column; results collected before sweeps get ``settings`` ""."""
    return runs if "settings" in runs else runs.assign(settings="")


def finished(runs: pd.DataFrame) -> pd.DataFrame:
    """Runs that count as replicates: state ``done`` with a test accuracy."""
    runs = with_cell_columns(runs)
    return runs[(runs["state"] == "done") & runs["test_accuracy"].notna()]


def excluded_counts(group: pd.DataFrame) -> dict[str, int]:
    """Per state, the runs of ``group`` that do not count (a done run without test metrics too)."""
    out = group.loc[group.index.difference(finished(group).index), "state"]
    counts = out.fillna("unknown").value_counts()
    return {str(state): int(n) for state, n in counts.items()}


def excluded_text(counts: dict[str, int]) -> str:
    """``1 diverged, 1 failed`` (or ``none``)."""
    return ", ".join(f"{n} {state}" for state, n in sorted(counts.items())) or "none"


def with_metric_columns(runs: pd.DataFrame) -> pd.DataFrame:
    """``runs`` with a NaN column for every compared metric it lacks (results of older runs)."""
    missing = [m for m in METRICS if m not in runs]
    runs = with_cell_columns(runs)
    return runs.assign(**dict.fromkeys(missing, np.nan)) if missing else runs
