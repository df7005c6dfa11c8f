"""The attribution table: how much of the PyTorch − Keras gap each rung of the ladder removes.

For each (dataset, model, precision) cell with runs of an attribution stage
(``fwbench.registry.attribution_rungs``):
per rung, the per-seed differences of test accuracy between its two arms (paired by seed: a
seed gives both arms the same split, order and augmentation), their mean with a 95% bootstrap
CI, each arm's spread across seeds, what the rung removes relative to the rung above it (also
paired by seed, with its CI), and whether the gap that is left lies within the *instability
floor* — the band of mean differences between two PyTorch runs that differ only in an
innocuous change (memory layout). Statistics from scipy; no framework is imported.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
from scipy import stats

from fwbench.registry.attribution_rungs import LADDER, RUNGS, Arm

CELL = ["dataset", "model", "precision"]
METRIC = "test_accuracy"
CONFIDENCE = 0.95
N_RESAMPLES = 9999
RANDOM_STATE = 0
COLUMNS = [
    *CELL, "versus", "rung", "left", "seeds", "gap_pp", "gap_ci_low_pp", "gap_ci_high_pp",
    "sd_a_pp", "sd_b_pp", "removed_pp", "removed_ci_low_pp", "removed_ci_high_pp", "floor_band_pp",
    "within_floor", "p_vs_floor",
]  # fmt: skip


def primary_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """The runs the arm comparison pairs by seed: the attribution-only arms left out.

    An attribution stage adds, per seed, instability-floor controls (runs with a
    ``perturbation``) and, in its matched cell, Keras runs of both inits. The arm comparison
    keeps one run per cell, arm and seed: no perturbation, and ``init: shared`` (the matched
    default) where both inits exist. The attribution table reads every run.
    """
    if "perturbation" not in runs.columns or "init" not in runs.columns:
        return runs
    out = runs[runs["perturbation"].isna()]
    key = ["dataset", "model", "precision", "variant", "framework", "seed"]
    both = out.groupby(key, dropna=False)["init"].transform("nunique") > 1
    return out[~both | (out["init"] == "shared")]


def _mean_ci(values: np.ndarray) -> tuple[float, float, float]:
    """Mean and 95% bootstrap CI (BCa; percentile where BCa is degenerate) of ``values``."""
    x = np.asarray(values, np.float64)
    if len(x) == 0:
        return math.nan, math.nan, math.nan
    mean = float(np.mean(x))
    if len(x) < 2 or np.ptp(x) == 0:
        return mean, mean, mean
    for method in ("BCa", "percentile"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ci = stats.bootstrap(
                (x,), np.mean, confidence_level=CONFIDENCE, n_resamples=N_RESAMPLES,
                method=method, random_state=RANDOM_STATE,
            ).confidence_interval  # fmt: skip
        if math.isfinite(ci.low) and math.isfinite(ci.high):
            return mean, float(ci.low), float(ci.high)
    return mean, math.nan, math.nan


def _arm_runs(cell: pd.DataFrame, arm: Arm, versus: str) -> pd.Series:
    """Test accuracy by seed of the finished runs of one arm of a cell (``versus``: the other
    arm's framework, e.g. ``keras``)."""
    framework = "pytorch" if arm.role == "reference" else versus
    rows = cell[(cell["framework"] == framework) & (cell["variant"] == arm.variant)]
    if arm.init is not None:
        rows = rows[rows["init"] == arm.init]
    wanted = arm.perturbation
    rows = (
        rows[rows["perturbation"].isna()]
        if wanted is None
        else rows[rows["perturbation"] == wanted]
    )
    return rows.groupby("seed")[METRIC].mean()


def rung_differences(
    cell: pd.DataFrame, versus: str
) -> dict[str, tuple[pd.Series, pd.Series, pd.Series]]:
    """Per rung present in ``cell``: (arm A by seed, arm B by seed, A − B by paired seed)."""
    out = {}
    for name in LADDER:
        a, b = (_arm_runs(cell, arm, versus) for arm in (RUNGS[name].a, RUNGS[name].b))
        diff = (a - b).dropna()
        if len(diff):
            out[name] = (a, b, diff)
    return out


def _sd(x: pd.Series) -> float:
    return float(np.std(x, ddof=1)) if len(x) > 1 else math.nan


def attribution_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per cell and rung (see the module docstring); empty without attribution runs."""
    needed = {"init", "perturbation", "variant", METRIC, "state"}
    if runs.empty or not needed <= set(runs.columns):
        return pd.DataFrame(columns=COLUMNS)
    done = runs[(runs["state"] == "done") & runs[METRIC].notna()]
    rows = []
    for (key, cell), versus in (
        (kc, fw)
        for kc in done.groupby(CELL, sort=True)
        for fw in sorted(set(kc[1]["framework"]) - {"pytorch"})
    ):
        diffs = rung_differences(cell, versus)
        if "floor" not in diffs or len(diffs) < 2:
            continue  # not an attribution cell: no floor, or nothing to hold against it
        floor = diffs["floor"][2]
        _, f_low, f_high = _mean_ci(floor)
        band = max(abs(f_low), abs(f_high))
        previous = None
        for name, (a, b, d) in diffs.items():
            gap, low, high = _mean_ci(d)
            removed = (math.nan,) * 3
            if previous is not None:
                removed = _mean_ci((previous - d).dropna())
            p = math.nan
            if name != "floor" and len(d) > 1 and len(floor) > 1:
                p = float(stats.ttest_ind(d, floor, equal_var=False).pvalue)
            rows.append(
                dict(zip(CELL, key, strict=True))
                | {"versus": versus, "rung": name, "left": RUNGS[name].left, "seeds": len(d)}
                | _pp(gap=gap, gap_ci_low=low, gap_ci_high=high, sd_a=_sd(a), sd_b=_sd(b))
                | _pp(removed=removed[0], removed_ci_low=removed[1], removed_ci_high=removed[2])
                | _pp(floor_band=band)
                | {"within_floor": bool(abs(gap) <= band), "p_vs_floor": p}
            )
            previous = d
    return pd.DataFrame(rows, columns=COLUMNS)


def _pp(**values: float) -> dict[str, float]:
    """Accuracy fractions as percentage points, ``<name>_pp``."""
    return {f"{k}_pp": v * 100.0 for k, v in values.items()}


def _fmt(v: float, signed: bool = True) -> str:
    return "n/a" if not math.isfinite(v) else f"{v:+.2f}" if signed else f"{v:.2f}"


def display(table: pd.DataFrame) -> pd.DataFrame:
    """The table for reading: gaps and removals with their CIs, in percentage points."""
    if table.empty:
        return table
    out = table[[*CELL, "versus", "rung", "left", "seeds"]].copy()
    out["PyTorch − Keras (pp) [95% CI]"] = [
        f"{_fmt(g)} [{_fmt(lo)}, {_fmt(hi)}]"
        for g, lo, hi in zip(table["gap_pp"], table["gap_ci_low_pp"], table["gap_ci_high_pp"],
                             strict=True)
    ]  # fmt: skip
    out["sd A / B (pp)"] = [
        f"{_fmt(a, False)} / {_fmt(b, False)}"
        for a, b in zip(table["sd_a_pp"], table["sd_b_pp"], strict=True)
    ]
    out["removed by this rung (pp) [95% CI]"] = [
        "—" if not math.isfinite(r) else f"{_fmt(r)} [{_fmt(lo)}, {_fmt(hi)}]"
        for r, lo, hi in zip(table["removed_pp"], table["removed_ci_low_pp"],
                             table["removed_ci_high_pp"], strict=True)
    ]  # fmt: skip
    out["within floor (±pp)"] = [
        f"{'yes' if w else 'no'} (±{_fmt(b, False)})"
        for w, b in zip(table["within_floor"], table["floor_band_pp"], strict=True)
    ]
    out["Welch p vs floor"] = [
        _fmt(p, False) if math.isfinite(p) else "—" for p in table["p_vs_floor"]
    ]
    return out


def wording(table: pd.DataFrame) -> list[str]:
    """One sentence per cell: the library gap, what each rung removes, and what is left."""
    lines = []
    for key, cell in table.groupby([*CELL, "versus"], sort=True):
        rows = {r["rung"]: r for r in cell.to_dict("records")}
        floor = rows["floor"]
        band = floor["floor_band_pp"]
        start = rows.get("library") or next(iter(rows.values()))
        parts = [f"**{'/'.join(map(str, key[:-1]))}**: of the {_fmt(start['gap_pp'])} pp "
                 f"PyTorch − {key[-1]} gap ({start['rung']})"]  # fmt: skip
        for name in ("matched-own", "matched-shared"):
            if name in rows and math.isfinite(rows[name]["removed_pp"]):
                r = rows[name]
                parts.append(
                    f"{_fmt(r['removed_pp'])} pp [{_fmt(r['removed_ci_low_pp'])}, "
                    f"{_fmt(r['removed_ci_high_pp'])}] goes with {RUNGS[name].removes}"
                )
        last = rows.get("matched-shared") or rows.get("matched-own") or start
        verdict = "within" if last["within_floor"] else "beyond"
        lines.append(
            "; ".join(parts)
            + f"; the remaining {_fmt(last['gap_pp'])} pp is {verdict} the instability floor "
            f"(±{_fmt(band, False)} pp: the 95% band of mean differences between two PyTorch "
            f"runs that differ only in memory layout, {int(floor['seeds'])} seeds)."
        )
    return lines


def init_note(runs: pd.DataFrame) -> list[str]:
    """One line on where the matched Keras runs' initial weights came from (empty if none)."""
    if "init" not in runs.columns:
        return []
    keras = runs[(runs["variant"] == "matched") & (runs["framework"] != "pytorch")]
    counts = keras["init"].value_counts()
    if keras.empty:
        return []
    return [
        f"Initial weights of the matched Keras runs: {counts.get('shared', 0)} start from the "
        f"PyTorch arm's initial weights for their seed (`init: shared`, rebuilt in the run's "
        f"own process), {counts.get('own', 0)} from Keras' own initialisers (`init: own`)."
    ]


def report_section(runs: pd.DataFrame) -> list[str]:
    """The report's init line and attribution section (Markdown blocks; empty if neither)."""
    table = attribution_table(runs)
    if table.empty:
        return init_note(runs)
    return [
        *init_note(runs),
        "### Attribution: why the arms differ",
        "Each rung removes one reason the arms could differ "
        "(`fwbench.registry.attribution_rungs`): library → "
        "matched with each framework's own init (architecture defaults removed) → matched "
        "with the PyTorch arm's init (`init: shared`, initialisation removed) → the "
        "instability floor (PyTorch vs PyTorch, memory layout toggled). Gaps are per-seed "
        "differences of test accuracy, paired by seed, with 95% bootstrap CIs; 'removed' is "
        "the rung above's gap minus this rung's, paired by seed.",
        display(table).to_markdown(index=False),
        "\n".join(f"- {line}" for line in wording(table)),
    ]


def write_attribution(runs: pd.DataFrame, analysis_dir, scope: str = "") -> list:
    """``analysis/attribution.csv`` and ``attribution.md`` (nothing without attribution runs);
    the ``.md`` opens with ``scope`` (which runs it covers) when one is given."""
    from fwbench.core.fileio import write_text

    table = attribution_table(runs)
    if table.empty:
        return []
    csv = write_text(analysis_dir / "attribution.csv", table.to_csv(index=False))
    text = (
        (f"_{scope}_\n\n" if scope else "")
        + display(table).to_markdown(index=False)
        + "\n\n"
        + "\n".join(f"- {w}" for w in wording(table))
    )
    return [csv, write_text(analysis_dir / "attribution.md", text + "\n")]
