"""What every reader shares: the raw dataset record, MD5 checks, downloads, label checks."""

from __future__ import annotations

import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fwbench.core.errors import FwbenchError
from fwbench.core.fileio import md5_file
from fwbench.registry.datasets import DatasetInfo

Checksums = dict[str, str]  # file name -> md5; overrides the catalog's official sums


@dataclass
class RawDataset:
    """A dataset as read from its source: training pool + test set, uint8 NHWC RGB."""

    name: str
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    classes: list[str]
    source_files: list[Path] = field(default_factory=list)


def check_md5(path: Path, expected: str) -> None:
    """Refuse ``path`` unless its MD5 is ``expected`` (a user error naming the file)."""
    actual = md5_file(path)
    if actual != expected:
        raise FwbenchError(
            f"checksum mismatch: MD5 {actual}, expected {expected}",
            path=path,
            fix="the file is corrupt or not the official one; download it again (--download)",
        )


def expected_md5(info: DatasetInfo, name: str, checksums: Checksums | None) -> str:
    """The MD5 to demand of official file ``name``: the user's override, else the catalog's."""
    if checksums and name in checksums:
        return checksums[name]
    official = {f.name: f.md5 for f in info.files}
    if info.archive:
        official[info.archive.name] = info.archive.md5
    return official[name]


def download_file(url: str, dest: Path) -> Path:
    """Download ``url`` to ``dest`` (atomic); a network failure is a user error."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(dest.suffix + ".part")
    try:
        with urllib.request.urlopen(url, timeout=60) as r, open(tmp, "wb") as f:
            while block := r.read(1 << 20):
                f.write(block)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise FwbenchError(
            f"download failed: {e}",
            path=url,
            fix=f"check the network, or download it by hand into {dest.parent}",
        ) from None
    tmp.replace(dest)
    return dest


def check_labels(raw: object, n_images: int, path: Path, fix: str) -> np.ndarray:
    """Labels as int64, refused unless they are integers, one per image."""
    labels = np.asarray(raw) if isinstance(raw, list | np.ndarray) else None
    if labels is not None and labels.size == 0:
        labels = labels.astype(np.int64)
    if labels is None or labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise FwbenchError("labels are not a list of integers", path=path, fix=fix)
    if labels.size != n_images:
        raise FwbenchError(f"{labels.size} labels for {n_images} images", path=path, fix=fix)
    return labels.astype(np.int64)
