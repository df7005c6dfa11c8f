"""Figures for the report (matplotlib, Agg backend): curves, distributions, speed, AMP effect.

Only finished runs (state ``done``) enter a figure; the report's coverage table accounts for
the rest. Every figure is written three times: PNG (300 dpi), SVG and PDF.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
from scipy import stats  # noqa: E402

from fwbench.analysis.confusion import confusion_figures  # noqa: E402
from fwbench.analysis.forest import forest_plot  # noqa: E402
from fwbench.analysis.pairs import arm_order  # noqa: E402
from fwbench.analysis.replicates import CELL  # noqa: E402
from fwbench.analysis.stats import Analysis  # noqa: E402
from fwbench.analysis.style import arm_color, cell_label, cell_slug, save_figure  # noqa: E402

_save = save_figure
MIN_FIGURE_WIDTH = 6.4  # inches: a figure title fits over a single panel


def mean_ci(frame: pd.DataFrame, column: str, confidence: float = 0.95) -> pd.DataFrame:
    """Per epoch: mean of ``column`` over seeds and its t-based CI (the mean itself when n < 2)."""
    per_epoch = frame.groupby("epoch")[column].agg(["mean", "std", "count"])
    per_epoch = per_epoch[per_epoch["count"] > 0]
    n, sem = per_epoch["count"], per_epoch["std"] / np.sqrt(per_epoch["count"])
    half = pd.Series(stats.t.ppf(0.5 + confidence / 2, np.maximum(n - 1, 1)), index=n.index) * sem
    half = half.where(n > 1, 0.0).fillna(0.0)
    return per_epoch.assign(low=per_epoch["mean"] - half, high=per_epoch["mean"] + half)


def _band(
    ax: plt.Axes,
    runs: pd.DataFrame,
    column: str,
    framework: str,
    bounds: tuple[float, float] | None = None,
    style: str = "-",
    label: str = "",
) -> int:
    """Mean over seeds of ``column`` per epoch with its 95% CI band; returns the seed count."""
    band = mean_ci(runs, column)
    if band.empty:
        return 0
    n = runs["run_id"].nunique()
    low, high = band["low"], band["high"]
    if bounds is not None:  # a bounded metric's band stays inside its bounds
        low, high = low.clip(*bounds), high.clip(*bounds)
    color = arm_color(framework)
    text = f"{framework}{label} (n={n})"
    ax.plot(band.index, band["mean"], style, marker="o", ms=3, color=color, label=text)
    ax.fill_between(band.index, low, high, color=color, alpha=0.2, lw=0)
    return n


def learning_curves(epochs: pd.DataFrame, out_dir: Path) -> list[Path]:
    """One figure per cell: validation accuracy, train and validation loss, LR vs epoch."""
    if epochs.empty:
        return []
    done = epochs[epochs["state"] == "done"]
    paths = []
    for key, cell in done.groupby(CELL, sort=True):
        fig, (acc_ax, loss_ax, lr_ax) = plt.subplots(1, 3, figsize=(13, 3.8), layout="constrained")
        for framework in arm_order(cell["framework"].unique()):
            arm = cell[cell["framework"] == framework]
            pct = arm.assign(val_accuracy=arm["val_accuracy"] * 100)
            _band(acc_ax, pct, "val_accuracy", framework, bounds=(0.0, 100.0))
            # a loss is never negative: its band stops at 0
            _band(loss_ax, arm, "train_loss", framework, (0.0, np.inf), label=" train")
            _band(loss_ax, arm, "val_loss", framework, (0.0, np.inf), style="--", label=" val")
            lr = arm.groupby("epoch")["learning_rate"].mean()
            lr_ax.plot(lr.index, lr, marker="o", ms=3, color=arm_color(framework), label=framework)
        acc_ax.set(xlabel="epoch", ylabel="validation accuracy (%)", title="Validation accuracy")
        loss_ax.set(
            xlabel="epoch", ylabel="loss", title="Train (solid) and validation (dashed) loss"
        )
        lr_ax.set(xlabel="epoch", ylabel="learning rate", title="Learning rate (end of epoch)")
        for ax in (acc_ax, loss_ax, lr_ax):
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
        fig.suptitle(f"{cell_label(key)}: mean over seeds with 95% CI band")
        paths.append(_save(fig, out_dir / f"curves_{cell_slug(key)}.png"))
    return paths


def _grid(n: int, width: float = 3.2, height: float = 3.0) -> tuple[plt.Figure, np.ndarray]:
    cols = min(n, 4)
    rows = math.ceil(n / cols)
    total = max(width * cols, MIN_FIGURE_WIDTH)  # room for the figure's title over one panel
    fig, axes = plt.subplots(rows, cols, figsize=(total, height * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, axes.flat


def accuracy_distributions(runs: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Test accuracy of every finished seed per cell: box plot and points, by framework."""
    done = runs[(runs["state"] == "done") & runs["test_accuracy"].notna()]
    cells = list(runs.groupby(CELL, sort=True).groups)
    if not cells:
        return []
    fig, axes = _grid(len(cells))
    arms = arm_order(runs["framework"].unique())
    rng = np.random.default_rng(0)  # jitter only; never enters a number
    for ax, key in zip(axes, cells, strict=False):
        sel = done[(done[CELL] == pd.Series(key, index=CELL)).all(axis=1)]
        values = [sel.loc[sel["framework"] == f, "test_accuracy"].to_numpy() * 100 for f in arms]
        for i, (framework, v) in enumerate(zip(arms, values, strict=True), start=1):
            if len(v):
                ax.boxplot(v, positions=[i], widths=0.5, showfliers=False)
                ax.scatter(
                    i + rng.uniform(-0.12, 0.12, len(v)),
                    v,
                    color=arm_color(framework),
                    zorder=3,
                    s=22,
                )
        ticks = [f"{f}\nn={len(v)}" for f, v in zip(arms, values, strict=True)]
        ax.set_xticks(range(1, len(arms) + 1), ticks, fontsize=8)
        ax.set_xlim(0.4, len(arms) + 0.6)
        ax.set_title(cell_label(key), fontsize=9)
        ax.set_ylabel("test accuracy (%)")
        ax.grid(alpha=0.3, axis="y")
        if not any(len(v) for v in values):
            ax.text(0.5, 0.5, "no finished runs", ha="center", transform=ax.transAxes)
    fig.suptitle("Test accuracy per seed (box: quartiles; points: seeds)")
    fig.tight_layout()
    return [_save(fig, out_dir / "test_accuracy_by_cell.png")]


def _grouped_bars(ax: plt.Axes, summary: pd.DataFrame, metric: str, ylabel: str) -> None:
    labels = sorted({cell_label(r) for r in summary.to_dict("records")})
    x = np.arange(len(labels))
    arms = arm_order(summary["framework"].unique())
    width = 0.76 / len(arms)
    for i, framework in enumerate(arms):
        arm = summary[summary["framework"] == framework]
        by_label = {cell_label(r): r for r in arm.to_dict("records")}
        mean = np.array([by_label.get(lb, {}).get(f"{metric}_mean", np.nan) for lb in labels])
        sd = np.nan_to_num([by_label.get(lb, {}).get(f"{metric}_sd", np.nan) for lb in labels])
        below = np.minimum(sd, np.nan_to_num(mean))  # a time or a rate never goes below 0
        ax.bar(
            x + (i - (len(arms) - 1) / 2) * width,
            mean,
            width,
            yerr=np.vstack([below, sd]),
            capsize=3,
            color=arm_color(framework),
            label=framework,
        )
    ax.set_xticks(x, labels, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)


def speed(summary: pd.DataFrame, out_dir: Path) -> list[Path]:
    """Mean ± sd epoch time (first epoch excluded) and throughput per cell and framework."""
    if summary.empty or summary["epoch_time_s_mean"].notna().sum() == 0:
        return []
    width = max(8.0, 1.2 * summary.groupby(CELL).ngroups)
    fig, (t_ax, ips_ax) = plt.subplots(1, 2, figsize=(width, 4))
    _grouped_bars(t_ax, summary, "epoch_time_s", "seconds per epoch (lower is faster)")
    _grouped_bars(ips_ax, summary, "images_per_second", "training images/s (higher is faster)")
    t_ax.set_title("Epoch time (mean ± sd)")
    ips_ax.set_title("Throughput (mean ± sd)")
    fig.tight_layout()
    return [_save(fig, out_dir / "time_throughput.png")]


def amp(amp_table: pd.DataFrame, out_dir: Path) -> list[Path]:
    """AMP speed-up (fp32/amp epoch time) and accuracy change (amp − fp32) per framework."""
    if amp_table.empty or amp_table["speedup"].notna().sum() == 0:
        return []
    table = amp_table.assign(label=amp_table["dataset"] + "/" + amp_table["model"])
    labels = sorted(table["label"].unique())
    x = np.arange(len(labels))
    fig, (s_ax, a_ax) = plt.subplots(1, 2, figsize=(max(8.0, 1.5 * len(labels)), 3.8))
    arms = arm_order(table["framework"].unique())
    width = 0.76 / len(arms)
    for i, framework in enumerate(arms):
        arm = table[table["framework"] == framework].set_index("label").reindex(labels)
        pos = x + (i - (len(arms) - 1) / 2) * width
        s_ax.bar(pos, arm["speedup"], width, color=arm_color(framework), label=framework)
        change = arm["acc_change"] * 100
        err = np.abs(np.vstack([change - arm["ci_low"] * 100, arm["ci_high"] * 100 - change]))
        a_ax.bar(
            pos,
            change,
            width,
            yerr=np.nan_to_num(err),
            capsize=3,
            color=arm_color(framework),
            label=framework,
        )
    s_ax.axhline(1.0, color="k", lw=0.8)
    a_ax.axhline(0.0, color="k", lw=0.8)
    s_ax.set(ylabel="speed-up (fp32 / amp epoch time)", title="AMP speed-up")
    a_ax.set(ylabel="test accuracy change (pp)", title="AMP − FP32 accuracy (95% bootstrap CI)")
    for ax in (s_ax, a_ax):
        ax.set_xticks(x, labels, rotation=20, ha="right", fontsize=8)
        ax.grid(alpha=0.3, axis="y")
        ax.legend(fontsize=8)
    fig.tight_layout()
    return [_save(fig, out_dir / "amp_effect.png")]


def make_plots(
    runs: pd.DataFrame, epochs: pd.DataFrame, analysis: Analysis, out_dir: Path, root: Path
) -> dict:
    """Every figure by section (``forest``, ``curves``, ``confusion``, ``accuracy``, ``speed``,
    ``amp``) -> list of PNG paths (each with ``.svg`` and ``.pdf`` beside it).

    ``root`` is the workspace the runs' ``run_dir`` paths are relative to (confusion matrices).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    return {
        "forest": forest_plot(analysis, out_dir),
        "curves": learning_curves(epochs, out_dir),
        "confusion": confusion_figures(root, runs, out_dir),
        "accuracy": accuracy_distributions(runs, out_dir),
        "speed": speed(analysis.summary, out_dir),
        "amp": amp(analysis.amp, out_dir),
    }
