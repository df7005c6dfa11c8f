"""What every figure shares: arm colours, cell labels and writing PNG (300 dpi), SVG and PDF."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from fwbench.analysis.replicates import cell_name  # noqa: E402
from fwbench.core.fileio import atomic_write  # noqa: E402

COLORS = {
    "pytorch": "#ee4c2c",
    "keras": "#1f5fbf",
    "keras-jax": "#2a9d8f",
    "keras-torch": "#8e44ad",
}
OTHER_COLOR = "#555555"
DPI = 300
FORMATS = ("png", "svg", "pdf")


def arm_color(framework: str) -> str:
    """The arm's colour in every figure."""
    return COLORS.get(framework, OTHER_COLOR)


def cell_label(key: tuple | dict) -> str:
    """``dataset/model/precision`` (see ``replicates.cell_name``)."""
    return cell_name(key)


def cell_slug(key: tuple | dict) -> str:
    """A file-name-safe form of :func:`cell_label`."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", cell_label(key).replace("/", "-"))


def save_figure(fig: plt.Figure, path: Path) -> Path:
    """Write ``fig`` as ``path`` (PNG, 300 dpi) and as SVG and PDF beside it; close it."""
    for fmt in FORMATS:
        target = path.with_suffix(f".{fmt}")
        atomic_write(target, lambda p, f=fmt: fig.savefig(p, format=f, dpi=DPI))
    plt.close(fig)
    return path.with_suffix(".png")
