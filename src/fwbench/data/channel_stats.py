"""Per-channel mean and std of the training split only, written to ``dataset_stats.yaml``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from fwbench.core.errors import FwbenchError
from fwbench.core.fileio import write_yaml
from fwbench.core.strict_yaml import parse_yaml  # strict and bounded, like every config


def channel_stats(images: np.ndarray, chunk: int = 4096) -> tuple[list[float], list[float]]:
    """Mean and (population) std per RGB channel of uint8 NHWC images scaled to [0, 1].

    Accumulated in float64 over chunks, so a 90,000-image set needs no float copy of itself.
    """
    total = np.zeros(3)
    total_sq = np.zeros(3)
    n = 0
    for start in range(0, len(images), chunk):
        block = images[start : start + chunk].reshape(-1, 3).astype(np.float64) / 255.0
        total += block.sum(axis=0)
        total_sq += np.square(block).sum(axis=0)
        n += block.shape[0]
    mean = total / n
    std = np.sqrt(np.maximum(total_sq / n - np.square(mean), 0.0))
    return mean.tolist(), std.tolist()


def read_stats_file(path: Path) -> dict:
    """All entries of ``dataset_stats.yaml`` (empty when the file does not exist)."""
    if not path.is_file():
        return {}
    try:
        data = parse_yaml(path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError):
        data = None
    if not isinstance(data, dict):
        raise FwbenchError(
            "dataset_stats.yaml is not a valid YAML mapping",
            path=path,
            fix="delete it and rerun `fwbench data prepare` for each dataset",
        )
    return data


def update_stats_file(path: Path, dataset: str, entry: dict) -> None:
    """Set ``dataset``'s entry in ``dataset_stats.yaml``, keeping the other datasets' entries."""
    data = read_stats_file(path)
    data[dataset] = entry
    write_yaml(path, dict(sorted(data.items())))


def dataset_stats(path: Path, dataset: str) -> tuple[list[float], list[float]]:
    """(mean, std) of ``dataset`` from ``dataset_stats.yaml``."""
    entry = read_stats_file(path).get(dataset)
    if not entry:
        raise FwbenchError(
            f"no channel statistics for '{dataset}'",
            path=path,
            fix=f"run `fwbench data prepare {dataset}`",
        )
    return list(entry["mean"]), list(entry["std"])
