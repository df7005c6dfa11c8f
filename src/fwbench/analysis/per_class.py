"""Per-class test accuracy: per cell, arm pair and class, the arms' means and paired difference.

``collect`` stores each run's per-class accuracies as a JSON list (``test_per_class_accuracy``);
a class difference is the mean over seed pairs with a t-based CI truncated to [-1, 1].
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from scipy import stats

from fwbench.analysis.pairs import comparison_label, comparisons
from fwbench.analysis.replicates import CELL, finished
from fwbench.config.analysis import AnalysisConfig

COLUMN = "test_per_class_accuracy"


def per_class_matrix(runs: pd.DataFrame) -> pd.DataFrame:
    """Seeds x classes of one arm's runs (rows without per-class accuracy left out)."""
    values = {
        seed: json.loads(text)
        for seed, text in zip(runs["seed"], runs[COLUMN], strict=True)
        if isinstance(text, str) and text
    }
    return pd.DataFrame.from_dict(values, orient="index").sort_index()


def _class_ci(d: np.ndarray, confidence: float) -> tuple[float, float]:
    if len(d) < 2 or np.ptp(d) == 0:
        return (float(d.mean()), float(d.mean())) if len(d) else (np.nan, np.nan)
    low, high = stats.t.interval(confidence, len(d) - 1, loc=d.mean(), scale=stats.sem(d))
    return max(float(low), -1.0), min(float(high), 1.0)


def per_class_table(runs: pd.DataFrame, cfg: AnalysisConfig) -> pd.DataFrame:
    """Per cell, arm pair and class: n pairs, both arms' mean accuracy, difference and its CI."""
    if COLUMN not in runs:
        return pd.DataFrame()
    done = finished(runs)
    rows = []
    for key, group in done.groupby(CELL, sort=True, dropna=False):
        for a, b in comparisons(group["framework"].unique(), cfg.reference):
            ma, mb = (per_class_matrix(group[group["framework"] == f]) for f in (a, b))
            pairs = ma.index.intersection(mb.index)
            if not len(pairs) or ma.shape[1] != mb.shape[1]:
                continue
            for cls in ma.columns:
                # a class without test images has no accuracy (null): only seeds that have both
                both = pd.concat([ma.loc[pairs, cls], mb.loc[pairs, cls]], axis=1).dropna()
                if both.empty:
                    continue
                xa, xb = (both.iloc[:, i].to_numpy(dtype="float64") for i in (0, 1))
                low, high = _class_ci(xa - xb, cfg.confidence)
                rows.append(
                    dict(zip(CELL, key, strict=True))
                    | {"comparison": comparison_label(a, b), "arm_a": a, "arm_b": b}
                    | {"class": int(cls), "n_pairs": len(both)}
                    | {"mean_a": float(xa.mean()), "mean_b": float(xb.mean())}
                    | {"diff": float((xa - xb).mean()), "ci_low": low, "ci_high": high}
                )
    return pd.DataFrame(rows)
