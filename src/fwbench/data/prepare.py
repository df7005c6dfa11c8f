"""``fwbench data prepare``: raw files -> prepared arrays, seed-42 splits, train-only stats.

Writes ``data/prepared/<dataset>/``, ``data/splits/<dataset>/`` (index files + manifest.json) and
the dataset's entry of ``configs/dataset_stats.yaml``; prints the seed's validations and fails if
one does. Re-running on unchanged sources does no work.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fwbench.core.errors import FwbenchError
from fwbench.core.fileio import StagedWrites, check_writable, sha256_file
from fwbench.core.paths import Workspace
from fwbench.core.version import __version__
from fwbench.data.channel_stats import channel_stats, read_stats_file, update_stats_file
from fwbench.data.integrity import outputs
from fwbench.data.readers import Checksums, RawDataset, read_dataset
from fwbench.data.splits import SPLIT_SEED, holdout_size, per_class_counts, stratified_split
from fwbench.registry.datasets import DatasetInfo, get_dataset


@dataclass
class Check:
    """One validation: its name, whether it passed, and what was measured."""

    name: str
    passed: bool
    detail: str


@dataclass
class PrepareResult:
    """What ``prepare`` did: ``up_to_date`` means it found nothing to do."""

    dataset: str
    up_to_date: bool
    checks: list[Check] = field(default_factory=list)
    manifest: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(c.passed for c in self.checks)


def _fingerprint(paths: list[Path]) -> list[dict]:
    """Cheap identity of source files/folders: path, total size, newest mtime, file count."""
    out = []
    for p in paths:
        files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
        stats = [f.stat() for f in files]
        out.append(
            {
                "path": str(p.resolve()),
                "files": len(files),
                "size": sum(s.st_size for s in stats),
                "mtime_ns": max((s.st_mtime_ns for s in stats), default=0),
            }
        )
    return out


def _sha256_source(p: Path) -> str:
    if p.is_file():
        return sha256_file(p)
    h = hashlib.sha256()
    for f in sorted(x for x in p.rglob("*") if x.is_file()):
        h.update(str(f.relative_to(p)).encode())
        h.update(sha256_file(f).encode())
    return h.hexdigest()


_ARRAYS = ("train_images", "train_labels", "test_images", "test_labels")


def manifest_path(ws: Workspace, name: str) -> Path:
    return ws.splits_dir / name / "manifest.json"


def _is_up_to_date(ws: Workspace, name: str, source: Path) -> dict:
    """The existing manifest if every output is intact and the sources are unchanged, else {}."""
    mpath = manifest_path(ws, name)
    if not mpath.is_file():
        return {}
    try:
        manifest = json.loads(mpath.read_text())
    except json.JSONDecodeError:
        return {}
    if manifest.get("source") != str(source):
        return {}
    # Sources deleted since (raw archives removed to save space) do not invalidate outputs
    # whose SHA-256 still matches; sources that changed do.
    present = [r for r in manifest.get("source_fingerprint", []) if Path(r["path"]).exists()]
    if present and _fingerprint([Path(r["path"]) for r in present]) != present:
        return {}
    for key, path in outputs(ws, name).items():
        if not path.is_file() or sha256_file(path) != manifest["files"].get(key):
            return {}
    entry = read_stats_file(ws.stats_file).get(name)
    if not entry or entry.get("mean") != manifest["stats"]["mean"]:
        return {}
    return manifest


def _npy_writer(arr: np.ndarray):
    def write(tmp: Path) -> None:
        try:
            with open(tmp, "wb") as f:
                np.save(f, arr, allow_pickle=False)
        except OSError as e:
            # numpy reports a short write on a full disk without an errno: give it one
            if e.errno is None and shutil.disk_usage(tmp.parent).free < arr.nbytes:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp)) from None
            raise

    return write


def _manifest(name, source, raw, info, train_idx, val_idx, files: dict[str, Path], stats):
    """The manifest: sources, sizes, per-class counts, and size + SHA-256 of every output."""
    y = raw.train_labels
    return {
        "dataset": name,
        "seed": SPLIT_SEED,
        "fwbench_version": __version__,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "source": str(source),
        "source_fingerprint": _fingerprint(raw.source_files),
        "source_sha256": {str(p): _sha256_source(p) for p in raw.source_files},
        "sizes": {
            "train": int(train_idx.size),
            "val": int(val_idx.size),
            "test": int(raw.test_labels.size),
        },
        "per_class": {
            "train": per_class_counts(y[train_idx], info.num_classes),
            "val": per_class_counts(y[val_idx], info.num_classes),
            "test": per_class_counts(raw.test_labels, info.num_classes),
        },
        "files": {key: sha256_file(path) for key, path in files.items()},
        "file_sizes": {key: path.stat().st_size for key, path in files.items()},
        "stats": stats,
    }


def _validate_source(raw: RawDataset, info: DatasetInfo, partial: bool, where: Path) -> None:
    for split, labels in (("training", raw.train_labels), ("test", raw.test_labels)):
        if labels.size and (labels.min() < 0 or labels.max() >= info.num_classes):
            raise FwbenchError(
                f"{info.name} {split} labels outside 0..{info.num_classes - 1}",
                path=where,
                fix="use the official files",
            )
    expected = (info.pool_size, info.test_size)
    found = (raw.train_labels.size, raw.test_labels.size)
    if 0 in found:
        raise FwbenchError(
            f"{info.name}: {found[0]} training / {found[1]} test images; a set cannot be empty",
            path=where,
            fix="restore the missing files",
        )
    if found[0] > expected[0] or found[1] > expected[1]:
        raise FwbenchError(
            f"oversized {info.name}: {found[0]} training / {found[1]} test images, "
            f"the official set has {expected[0]} / {expected[1]}",
            path=where,
            fix="remove the extra files (duplicates or files of another dataset)",
        )
    if found != expected and not partial:
        raise FwbenchError(
            f"incomplete {info.name}: {found[0]} training / {found[1]} test images, "
            f"the official set has {expected[0]} / {expected[1]}",
            path=where,
            fix="restore the missing files, or pass --partial to prepare a subset on purpose",
        )
    if len(raw.classes) != info.num_classes:
        raise FwbenchError(
            f"{info.name} has {len(raw.classes)} class names, expected {info.num_classes}",
            path=where,
            fix="use the official meta files",
        )
    missing = sorted(set(range(info.num_classes)) - set(np.unique(raw.train_labels).tolist()))
    if missing:
        raise FwbenchError(
            f"{info.name} training set has no images of classes {missing[:5]}",
            path=where,
            fix="restore the missing class folders/files",
        )


def _checks(info, raw, train_idx, val_idx, mean, std, partial) -> list[Check]:
    pool, y = raw.train_labels.size, raw.train_labels
    n_train, n_val, n_test = train_idx.size, val_idx.size, raw.test_labels.size
    full = pool == info.pool_size
    want = (info.train_size, info.val_size, info.test_size) if full else (n_train, n_val, n_test)
    tr_c = per_class_counts(y[train_idx], info.num_classes)
    va_c = per_class_counts(y[val_idx], info.num_classes)
    pool_c = per_class_counts(y, info.num_classes)
    frac = n_val / pool
    balanced = all(abs(v - c * frac) < 1.0 for v, c in zip(va_c, pool_c, strict=True))
    ref_mean, ref_std = channel_stats(raw.train_images[train_idx])
    return [
        Check(
            "split sizes",
            (n_train, n_val, n_test) == want,
            f"train/val/test = {n_train:,} / {n_val:,} / {n_test:,}"
            + ("" if full else f" (partial source: {pool:,} of {info.pool_size:,} pool images)"),
        ),
        Check(
            "train and val disjoint",
            np.intersect1d(train_idx, val_idx).size == 0,
            f"{np.intersect1d(train_idx, val_idx).size} shared indices",
        ),
        Check(
            "train + val cover the training pool",
            np.array_equal(np.union1d(train_idx, val_idx), np.arange(pool)),
            f"{n_train + n_val:,} of {pool:,}",
        ),
        Check(
            "per-class balance (stratified)",
            balanced,
            f"val per class {min(va_c)}..{max(va_c)}, train per class {min(tr_c)}..{max(tr_c)}",
        ),
        Check(
            "stats from the train split only",
            np.allclose(ref_mean, mean) and np.allclose(ref_std, std),
            f"mean {np.round(mean, 4).tolist()} std {np.round(std, 4).tolist()} "
            f"over {n_train:,} train images",
        ),
    ]


def prepare(
    ws: Workspace,
    name: str,
    *,
    source: Path | None = None,
    download: bool = False,
    checksums: Checksums | None = None,
    partial: bool = False,
    force: bool = False,
    progress=None,
) -> PrepareResult:
    """Prepare dataset ``name`` in workspace ``ws`` (see module docstring)."""
    info = get_dataset(name)
    source = (source or ws.data_dir).resolve()
    if not force:
        manifest = _is_up_to_date(ws, name, source)
        if manifest:
            return PrepareResult(name, True, [], manifest)
    check_writable(ws.data_dir)  # a read-only workspace is reported before minutes of reading
    raw = read_dataset(
        name, source, ws.data_dir, download=download, checksums=checksums, progress=progress
    )
    _validate_source(raw, info, partial, source)
    n_val = holdout_size(raw.train_labels.size, info.pool_size, info.val_size, info.num_classes)
    train_idx, val_idx = stratified_split(raw.train_labels, n_val, seed=SPLIT_SEED)
    mean, std = channel_stats(raw.train_images[train_idx])
    checks = _checks(info, raw, train_idx, val_idx, mean, std, partial)

    outs = outputs(ws, name)
    arrays = dict(
        zip(
            (f"prepared/{k}.npy" for k in _ARRAYS),
            (raw.train_images, raw.train_labels, raw.test_images, raw.test_labels),
            strict=True,
        )
    )
    arrays["train_indices.npy"] = train_idx.astype(np.int64)
    arrays["val_indices.npy"] = val_idx.astype(np.int64)
    stats_entry = {
        "mean": mean,
        "std": std,
        "computed_on": "train",
        "n_images": int(train_idx.size),
        "scale": "pixels / 255",
    }
    # Every output is written beside its target first and all are renamed into place together
    # at the end: a full disk or Ctrl-C while writing leaves the previous preparation untouched.
    with StagedWrites() as staged:
        tmp = {key: staged.add(outs[key], _npy_writer(arr)) for key, arr in arrays.items()}
        classes_text = json.dumps(raw.classes, indent=1) + "\n"
        tmp["prepared/classes.json"] = staged.add(
            outs["prepared/classes.json"], lambda p: p.write_text(classes_text, encoding="utf-8")
        )
        manifest = _manifest(name, source, raw, info, train_idx, val_idx, tmp, stats_entry)
        manifest["checks"] = [c.__dict__ for c in checks]
        text = json.dumps(manifest, indent=2, default=str) + "\n"
        staged.add(manifest_path(ws, name), lambda p: p.write_text(text, encoding="utf-8"))
        update_stats_file(ws.stats_file, name, stats_entry)
        staged.commit()
    return PrepareResult(name, False, checks, manifest)
