"""Confusion-matrix figures: per cell, one row-normalised matrix per arm, summed over seeds."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from fwbench.analysis.pairs import arm_order
from fwbench.analysis.replicates import CELL
from fwbench.analysis.style import cell_label, cell_slug, save_figure
from fwbench.study.collect import confusion_matrix_sums

ANNOTATE_UP_TO = 12  # classes; beyond that the numbers would not be readable


def row_normalised(matrix: np.ndarray) -> np.ndarray:
    """Each true-class row as percentages of that class (rows without images stay 0)."""
    totals = matrix.sum(axis=1, keepdims=True)
    return np.divide(matrix * 100, totals, out=np.zeros_like(matrix), where=totals > 0)


def confusion_figures(root: Path, runs: pd.DataFrame, out_dir: Path) -> list[Path]:
    """One figure per cell with every arm's test confusion matrix (% of each true class)."""
    sums = confusion_matrix_sums(root, runs, [*CELL, "framework"])
    paths = []
    for cell in sorted({key[:-1] for key in sums}):
        arms = arm_order(key[-1] for key in sums if key[:-1] == cell)
        fig, axes = plt.subplots(1, len(arms), figsize=(4.2 * len(arms), 3.9), squeeze=False)
        for ax, arm in zip(axes[0], arms, strict=True):
            matrix, n = sums[(*cell, arm)]
            shown = row_normalised(matrix)
            image = ax.imshow(shown, cmap="Blues", vmin=0, vmax=100)
            if len(shown) <= ANNOTATE_UP_TO:
                for (i, j), value in np.ndenumerate(shown):
                    color = "white" if value > 60 else "black"
                    ax.text(j, i, f"{value:.0f}", ha="center", va="center", fontsize=6, color=color)
            ax.set(xlabel="predicted class", ylabel="true class", title=f"{arm} (sum of {n} seeds)")
            for axis in (ax.xaxis, ax.yaxis):
                axis.set_major_locator(MaxNLocator(integer=True))
            fig.colorbar(image, ax=ax, fraction=0.046, label="% of true class")
        fig.suptitle(f"{cell_label(cell)}: test confusion matrices")
        fig.tight_layout()
        paths.append(save_figure(fig, out_dir / f"confusion_{cell_slug(cell)}.png"))
    return paths
