"""When speed may be compared: only between runs trained under the same determinism.

Determinism is not free on a GPU (PyTorch ResNet-50 FP32 lost 28 % of its throughput to it on an
H200), so a speed difference between a deterministic and a non-deterministic run measures the
rule, not the framework. Cells whose finished runs differ in ``deterministic`` (in effect, as
each arm read it back into ``env.json``) get no speed verdict; ``fwbench analyze`` says so in one
line per cell (``analysis/overlaps.py`` holds the other timing rule: runs that shared a host).
Runs collected before determinism was recorded (no value) are not judged.
"""

from __future__ import annotations

import pandas as pd

from fwbench.analysis.replicates import CELL, cell_name, finished


def _label(value) -> str:
    return "on" if value is True else "off" if value is False else "unknown"


def mixed_determinism(runs: pd.DataFrame, group: list[str] | None = None) -> dict[tuple, str]:
    """Per ``group`` key (default: the cell) whose finished runs differ in determinism: why."""
    group = group or CELL
    done = finished(runs)
    if "deterministic" not in done or done.empty:
        return {}
    out: dict[tuple, str] = {}
    for key, rows in done.groupby(group, sort=True, dropna=False):
        values = rows["deterministic"].dropna()
        if values.nunique() < 2:
            continue
        per_arm = (
            rows.dropna(subset=["deterministic"])
            .groupby("framework", sort=True)["deterministic"]
            .agg(lambda v: "/".join(sorted({_label(bool(x)) for x in v})))
        )
        arms = "; ".join(f"{arm}: {state}" for arm, state in per_arm.items())
        out[key if isinstance(key, tuple) else (key,)] = (
            f"runs differ in determinism ({arms}): speed not compared"
        )
    return out


def refusal_lines(runs: pd.DataFrame) -> list[str]:
    """One line per cell whose speed is not compared, for the console."""
    return [
        f"{cell_name(dict(zip(CELL, key, strict=True)))}: {why}"
        for key, why in mixed_determinism(runs).items()
    ]
