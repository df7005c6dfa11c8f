"""Figures for the report (matplotlib, Agg backend): curves, distributions, speed, AMP effect.

Only finished runs (state ``done``) enter a figure; the report's coverage table accounts for
the rest.
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

from fwbench.analysis.stats import ARMS, CELL, Analysis  # noqa: E402
from fwbench.fileio import atomic_write  # noqa: E402

COLORS = {"pytorch": "#ee4c2c", "keras": "#1f5fbf"}
DPI = 110


def cell_label(key: tuple | dict) -> str:
    """``dataset/model/precision`` (plus ``/variant`` when it is not the library build)."""
    values = [key[c] for c in CELL] if isinstance(key, dict) else list(key)
    if values[-1] == "library":
        values = values[:-1]
    return "/".join(str(v) for v in values)


def cell_slug(key: tuple | dict) -> str:
    """A file-name-safe form of :func:`cell_label`."""
    return cell_label(key).replace("/", "-")


def _save(fig: plt.Figure, path: Path) -> Path:
    atomic_write(path, lambda p: fig.savefig(p, format="png", dpi=DPI, bbox_inches="tight"))
    plt.close(fig)
    return path


def _band(ax: plt.Axes, runs: pd.DataFrame, column: str, framework: str) -> int:
    """Mean ± sd over seeds of ``column`` per epoch, drawn as a line with a band; seed count."""
    per_epoch = runs.groupby("epoch")[column].agg(["mean", "std", "count"])
    per_epoch = per_epoch[per_epoch["count"] > 0]
    if per_epoch.empty:
        return 0
    n = runs["run_id"].nunique()
    x, mean, sd = per_epoch.index.to_numpy(), per_epoch["mean"], per_epoch["std"].fillna(0.0)
    ax.plot(x, mean, marker="o", ms=3, color=COLORS.get(framework), label=f"{framework} (n={n})")
    ax.fill_between(x, mean - sd, mean + sd, color=COLORS.get(framework), alpha=0.2, lw=0)
    return n


def learning_curves(epochs: pd.DataFrame, out_dir: Path) -> list[Path]:
    """One figure per cell: validation accuracy and train loss vs epoch, mean ± sd per framework."""
    if epochs.empty:
        return []
    done = epochs[epochs["state"] == "done"]
    paths = []
    for key, cell in done.groupby(CELL, sort=True):
        fig, (acc_ax, loss_ax) = plt.subplots(1, 2, figsize=(10, 3.8), layout="constrained")
        for framework in ARMS:
            arm = cell[cell["framework"] == framework]
            _band(
                acc_ax,
                arm.assign(val_accuracy=arm["val_accuracy"] * 100),
                "val_accuracy",
                framework,
            )
            _band(loss_ax, arm, "train_loss", framework)
        acc_ax.set(xlabel="epoch", ylabel="validation accuracy (%)", title="Validation accuracy")
        loss_ax.set(xlabel="epoch", ylabel="train loss", title="Train loss")
        for ax in (acc_ax, loss_ax):
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
        fig.suptitle(f"{cell_label(key)}: mean ± sd over seeds")
        paths.append(_save(fig, out_dir / f"curves_{cell_slug(key)}.png"))
    return paths


def _grid(n: int, width: float = 3.2, height: float = 3.0) -> tuple[plt.Figure, np.ndarray]:
    cols = min(n, 4)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
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
    rng = np.random.default_rng(0)  # jitter only; never enters a number
    for ax, key in zip(axes, cells, strict=False):
        sel = done[(done[CELL] == pd.Series(key, index=CELL)).all(axis=1)]
        values = [sel.loc[sel["framework"] == f, "test_accuracy"].to_numpy() * 100 for f in ARMS]
        for i, (framework, v) in enumerate(zip(ARMS, values, strict=True), start=1):
            if len(v):
                ax.boxplot(v, positions=[i], widths=0.5, showfliers=False)
                ax.scatter(
                    i + rng.uniform(-0.12, 0.12, len(v)), v, color=COLORS[framework], zorder=3, s=22
                )
        ax.set_xticks([1, 2], [f"{f}\nn={len(v)}" for f, v in zip(ARMS, values, strict=True)])
        ax.set_xlim(0.4, 2.6)
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
    for i, framework in enumerate(ARMS):
        arm = summary[summary["framework"] == framework]
        by_label = {cell_label(r): r for r in arm.to_dict("records")}
        mean = [by_label.get(lb, {}).get(f"{metric}_mean", np.nan) for lb in labels]
        sd = [by_label.get(lb, {}).get(f"{metric}_sd", np.nan) for lb in labels]
        ax.bar(
            x + (i - 0.5) * 0.38,
            mean,
            0.38,
            yerr=np.nan_to_num(sd),
            capsize=3,
            color=COLORS[framework],
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
    for i, framework in enumerate(ARMS):
        arm = table[table["framework"] == framework].set_index("label").reindex(labels)
        pos = x + (i - 0.5) * 0.38
        s_ax.bar(pos, arm["speedup"], 0.38, color=COLORS[framework], label=framework)
        change = arm["acc_change"] * 100
        err = np.abs(np.vstack([change - arm["ci_low"] * 100, arm["ci_high"] * 100 - change]))
        a_ax.bar(
            pos,
            change,
            0.38,
            yerr=err,
            capsize=3,
            color=COLORS[framework],
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


def make_plots(runs: pd.DataFrame, epochs: pd.DataFrame, analysis: Analysis, out_dir: Path) -> dict:
    """Every figure, by section: ``curves``, ``accuracy``, ``speed``, ``amp`` -> list of paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    return {
        "curves": learning_curves(epochs, out_dir),
        "accuracy": accuracy_distributions(runs, out_dir),
        "speed": speed(analysis.summary, out_dir),
        "amp": amp(analysis.amp, out_dir),
    }
