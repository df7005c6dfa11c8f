"""Divergence as an outcome: how many seeds of each arm diverged, and whether the arms differ.

A diverged run is no replicate of the recipe, so it is left out of the metric tests; but
leaving it out silently would hide a framework difference (the arm that diverges more loses
seeds). So per cell and compared arm pair (``pairs.comparisons``): each arm's diverged seeds out
of its seeds that ended (``done`` or ``diverged``; failed and unfinished runs say nothing about
training), and, where the two proportions differ, Fisher's exact test (scipy, two-sided), Holm
corrected over the rows of this table.
"""

from __future__ import annotations

import pandas as pd
from scipy import stats

from fwbench.analysis.pairs import comparison_label, comparisons
from fwbench.analysis.replicates import CELL, cell_name, with_cell_columns
from fwbench.analysis.verdicts import holm

ENDED = ("done", "diverged")
COLUMNS = [*CELL, "comparison", "arm_a", "arm_b", "diverged_a", "ended_a", "diverged_b",
           "ended_b", "fisher_p", "p_holm"]  # fmt: skip


def _counts(group: pd.DataFrame, arm: str) -> tuple[int, int]:
    states = group.loc[group["framework"] == arm, "state"]
    return int((states == "diverged").sum()), int(states.isin(ENDED).sum())


def fisher_p(diverged_a: int, ended_a: int, diverged_b: int, ended_b: int) -> float:
    """Two-sided Fisher's exact p of diverged vs finished between two arms (NaN: nothing to
    test, i.e. an arm without ended seeds or the same proportion in both)."""
    if not ended_a or not ended_b or diverged_a * ended_b == diverged_b * ended_a:
        return float("nan")
    table = [[diverged_a, ended_a - diverged_a], [diverged_b, ended_b - diverged_b]]
    return float(stats.fisher_exact(table, alternative="two-sided").pvalue)


def divergence_table(runs: pd.DataFrame, alpha: float, reference: str) -> pd.DataFrame:
    """Per cell with a diverged run and per compared arm pair: the counts and the test."""
    runs = with_cell_columns(runs)
    rows = []
    for key, group in runs.groupby(CELL, sort=True, dropna=False):
        if not (group["state"] == "diverged").any():
            continue
        cell = dict(zip(CELL, key, strict=True))
        for a, b in comparisons(group["framework"].unique(), reference):
            (da, ea), (db, eb) = _counts(group, a), _counts(group, b)
            row = cell | {"comparison": comparison_label(a, b), "arm_a": a, "arm_b": b}
            row |= {"diverged_a": da, "ended_a": ea, "diverged_b": db, "ended_b": eb}
            rows.append(row | {"fisher_p": fisher_p(da, ea, db, eb)})
    table = pd.DataFrame(rows, columns=COLUMNS[:-1])
    return table.assign(p_holm=holm(table["fisher_p"], alpha))


def divergence_display(table: pd.DataFrame) -> pd.DataFrame:
    """The reader's view: ``2/5`` diverged per arm and the test, one row per cell and pair."""
    if table.empty:
        return table
    rows = []
    for r in table.to_dict("records"):
        tested = r["fisher_p"] == r["fisher_p"]
        rows.append(
            {
                "cell": cell_name(r),
                "arms (a - b)": r["comparison"],
                "diverged a": f"{r['diverged_a']}/{r['ended_a']}",
                "diverged b": f"{r['diverged_b']}/{r['ended_b']}",
                "Fisher p (Holm)": (
                    f"{r['fisher_p']:.3g} ({r['p_holm']:.3g})" if tested else "same rate: no test"
                ),
            }
        )
    return pd.DataFrame(rows)


def divergence_lines(table: pd.DataFrame) -> list[str]:
    """One line per row for ``fwbench analyze``'s console output."""
    return [
        f"{r['cell']} {r['arms (a - b)']}: diverged {r['diverged a']} vs {r['diverged b']}, "
        f"Fisher p (Holm) {r['Fisher p (Holm)']}"
        for r in divergence_display(table).to_dict("records")
    ]
