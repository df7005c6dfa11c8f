"""Is prepared data what its manifest says? Checked before a run trains on it.

``data prepare`` records the size and SHA-256 of every output in ``manifest.json``. Training
refuses files that differ (an interrupted ``prepare --force``, a hand edit, a copy gone wrong):
sizes are compared every time (cheap), hashes once per run — the run remembers the
(size, mtime) fingerprint it verified and hashes again only when that changes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fwbench.core.errors import FwbenchError
from fwbench.core.fileio import sha256_file
from fwbench.core.paths import Workspace
from fwbench.data.channel_stats import read_stats_file


def outputs(ws: Workspace, dataset: str) -> dict[str, Path]:
    """``{manifest key: path}`` of every file ``data prepare`` writes for ``dataset``."""
    prep, splits = ws.prepared_dir / dataset, ws.splits_dir / dataset
    paths = {f"prepared/{k}": prep / k for k in ("classes.json",)}
    for k in ("train_images", "train_labels", "test_images", "test_labels"):
        paths[f"prepared/{k}.npy"] = prep / f"{k}.npy"
    paths["train_indices.npy"] = splits / "train_indices.npy"
    paths["val_indices.npy"] = splits / "val_indices.npy"
    return paths


def _redo(dataset: str) -> str:
    return f"run `fwbench data prepare {dataset} --force`"


def read_manifest(ws: Workspace, dataset: str) -> dict[str, Any]:
    """The dataset's ``manifest.json``; a missing or unreadable one is a user error."""
    path = ws.splits_dir / dataset / "manifest.json"
    if not path.is_file():
        raise FwbenchError(
            f"dataset '{dataset}' is not prepared: {path.name} is missing",
            path=path,
            fix=f"run `fwbench data prepare {dataset}`",
        )
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as e:
        raise FwbenchError(f"unreadable manifest ({e})", path=path, fix=_redo(dataset)) from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        raise FwbenchError("manifest has no 'files' table", path=path, fix=_redo(dataset))
    for key in ("file_sizes", "stats", "sizes"):  # every table the checks read, typed
        value = manifest.get(key, {})
        if not isinstance(value, dict):
            raise FwbenchError(
                f"manifest field '{key}' is {json.dumps(value)[:40]}, not a table",
                path=path,
                fix=_redo(dataset),
            )
    for key in ("file_sizes", "sizes"):
        for name, n in manifest.get(key, {}).items():
            if isinstance(n, bool) or not isinstance(n, int) or n < 0:
                raise FwbenchError(
                    f"manifest {key}['{name}'] is {json.dumps(n)[:40]}, not a count",
                    path=path,
                    fix=_redo(dataset),
                )
    return manifest


def fingerprint(ws: Workspace, dataset: str) -> dict[str, list[int]]:
    """``{output: [size, mtime_ns]}`` of the prepared files that exist."""
    out = {}
    for key, path in outputs(ws, dataset).items():
        if path.is_file():
            st = path.stat()
            out[key] = [st.st_size, st.st_mtime_ns]
    return out


def check_present(ws: Workspace, dataset: str) -> dict[str, Any]:
    """Every output exists with the size its manifest records; return the manifest."""
    manifest = read_manifest(ws, dataset)
    sizes = manifest.get("file_sizes") or {}
    for key, path in outputs(ws, dataset).items():
        if not path.is_file():
            raise FwbenchError(
                f"dataset '{dataset}' is not fully prepared: {path.name} is missing",
                path=path,
                fix=_redo(dataset),
            )
        if key in sizes and path.stat().st_size != sizes[key]:
            raise FwbenchError(
                f"prepared file is {path.stat().st_size} bytes, its manifest says {sizes[key]} "
                "(an interrupted or mixed preparation)",
                path=path,
                fix=_redo(dataset),
            )
    return manifest


def verify_prepared(
    ws: Workspace, dataset: str, verified: dict[str, list[int]] | None = None
) -> dict[str, list[int]]:
    """Refuse prepared files that do not match their manifest; return their fingerprint.

    Sizes, the channel statistics and presence are checked always; SHA-256 hashes unless
    ``verified`` (the fingerprint a previous check of this run returned) is still current.
    """
    manifest = check_present(ws, dataset)
    stats = read_stats_file(ws.stats_file).get(dataset) or {}
    if stats.get("mean") != manifest.get("stats", {}).get("mean"):
        raise FwbenchError(
            f"channel statistics of '{dataset}' do not match its prepared data",
            path=ws.stats_file,
            fix=_redo(dataset),
        )
    current = fingerprint(ws, dataset)
    if verified == current:
        return current
    for key, path in outputs(ws, dataset).items():
        if sha256_file(path) != manifest["files"].get(key):
            raise FwbenchError(
                "prepared file does not match the SHA-256 in its manifest "
                "(an interrupted or mixed preparation)",
                path=path,
                fix=_redo(dataset),
            )
    return current
