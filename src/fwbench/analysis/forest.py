"""The forest plot of the first screen: each arm pair's difference per cell and metric, its CI,
the equivalence margin (shaded) and the verdict (colour)."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from fwbench.analysis.stats import Analysis
from fwbench.analysis.style import cell_label, save_figure
from fwbench.analysis.verdicts import (
    BEYOND,
    EQUIVALENT,
    INCONCLUSIVE,
    NO_TEST,
    NO_VERDICT,
    WITHIN,
)
from fwbench.analysis.wording import format_margin
from fwbench.registry.metric_info import METRICS

VERDICT_COLORS = {
    EQUIVALENT: "#2e7d32",
    WITHIN: "#1565c0",
    BEYOND: "#c62828",
    INCONCLUSIVE: "#ef8f00",
    NO_TEST: "#6d4c41",
    NO_VERDICT: "#9e9e9e",
}


def _factor(metric: str, relative: bool) -> tuple[float, str]:
    if relative:
        return 100.0, "%"
    return (100.0, "pp") if METRICS[metric].unit == "fraction" else (1.0, "s")


def forest_plot(analysis: Analysis, out_dir: Path) -> list[Path]:
    """One panel per metric: a − b per cell and arm pair with its CI, margin band, verdict."""
    comp = analysis.comparison
    if comp.empty:
        return []
    metrics = [m for m in METRICS if m in set(comp["metric"])]
    several = comp["comparison"].nunique() > 1
    labels = sorted(
        {(cell_label(r), r["comparison"]) for r in comp.to_dict("records")},
        key=lambda x: x,
        reverse=True,
    )
    y = {lab: i for i, lab in enumerate(labels)}
    cols = min(len(metrics), 3)
    rows = math.ceil(len(metrics) / cols)
    height = max(2.2, 0.32 * len(labels) + 1.2)
    fig, axes = plt.subplots(
        rows, cols, figsize=(4.6 * cols, height * rows), squeeze=False, sharey=True
    )
    for ax in axes.flat[len(metrics) :]:
        ax.set_visible(False)
    for ax, metric in zip(axes.flat, metrics, strict=False):
        margin = analysis.config.margins[metric]
        factor, unit = _factor(metric, margin.scale == "relative")
        delta = margin.value * factor
        ax.axvspan(-delta, delta, color="#4caf50", alpha=0.12, lw=0)
        for edge in (-delta, delta):
            ax.axvline(edge, color="#2e7d32", ls="--", lw=0.8)
        ax.axvline(0, color="black", lw=0.8)
        sel = comp[comp["metric"] == metric]
        for r in sel.to_dict("records"):
            pos = y[(cell_label(r), r["comparison"])]
            color = VERDICT_COLORS[r["verdict"]]
            diff = r["diff"] * factor
            if not np.isfinite(diff):
                continue
            low, high = r["ci_low"] * factor, r["ci_high"] * factor
            if np.isfinite(low) and np.isfinite(high):
                ax.errorbar(
                    diff, pos, xerr=[[diff - low], [high - diff]], fmt="o", color=color, capsize=3
                )
            else:
                ax.plot(diff, pos, "o", mfc="white", color=color)
        ax.set_title(f"{METRICS[metric].label}\nmargin {format_margin(metric, margin)}", fontsize=9)
        ax.set_xlabel(f"a − b ({unit})")
        ax.grid(alpha=0.3, axis="x")
    tick_labels = [f"{cell} {arms}" if several else cell for cell, arms in labels]
    for ax in axes[:, 0]:
        ax.set_yticks(range(len(labels)), tick_labels, fontsize=8)
        ax.set_ylim(-0.7, len(labels) - 0.3)
    handles = [
        plt.Line2D([], [], marker="o", ls="", color=c, label=v) for v, c in VERDICT_COLORS.items()
    ]
    fig.legend(handles=handles, loc="lower center", ncol=4, fontsize=8, frameon=False)
    fig.suptitle(
        "Paired difference a − b per cell with the interval its verdict read\n"
        "(Holm-adjusted level); shaded: margin"
    )
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return [save_figure(fig, out_dir / "forest.png")]
