"""Readers: official dataset files -> uint8 NHWC arrays (training pool and test set).

Sources, in their official formats:
- CIFAR-10/100: ``cifar-10-batches-py/`` / ``cifar-100-python/`` or the official ``.tar.gz``;
  MD5-checked before anything is unpickled, and unpickled with a restricted unpickler.
- Tiny-ImageNet: ``tiny-imagenet-200/`` (or its ``.zip``), or the seed's four ``.npy`` files.
  Its labelled ``val/`` set is the test set (the official test set has no labels).
- digits: scikit-learn's real 8x8 digits, upsampled to 32x32 RGB (offline).
- synthetic: seeded class-coloured patterns, for tests.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from fwbench.core.errors import FwbenchError
from fwbench.data.raw import (
    Checksums,
    RawDataset,
    check_labels,
    check_md5,
    download_file,
    expected_md5,
)
from fwbench.data.safe_archive import extract_folder
from fwbench.registry.datasets import DatasetInfo, get_dataset

__all__ = ["Checksums", "RawDataset", "read_dataset"]


class _CifarUnpickler(pickle.Unpickler):
    """Only what CIFAR pickles contain: dicts, lists, bytes and numpy arrays."""

    _allowed = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),  # how protocol-2 pickles written by Python 3 store bytes
        ("builtins", "bytes"),  # ... and empty bytes (an empty array's buffer)
        ("__builtin__", "bytes"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) in self._allowed:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _unpickle(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            return _CifarUnpickler(f, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, KeyError, TypeError, IndexError) as e:
        raise FwbenchError(
            f"cannot read CIFAR batch ({e})", path=path, fix="download the dataset again"
        ) from None


def _locate_cifar(info: DatasetInfo, source: Path, data_dir: Path, fetch: bool, sums) -> Path:
    """The extracted CIFAR folder: given directly, found in source/data_dir, or extracted."""
    assert info.folder and info.archive
    for cand in (source, source / info.folder, data_dir / info.folder):
        if cand.is_dir() and (
            cand.name == info.folder or any((cand / f.name).exists() for f in info.files)
        ):
            return cand
    for cand in (source, source / info.archive.name, data_dir / info.archive.name):
        if cand.is_file():
            archive = cand
            break
    else:
        if not fetch:
            raise FwbenchError(
                f"{info.name} not found: no {info.folder}/ folder or {info.archive.name}",
                path=source,
                fix=f"put the official files there, or pass --download (from {info.url})",
            )
        archive = download_file(info.url or "", data_dir / info.archive.name)
    check_md5(archive, expected_md5(info, info.archive.name, sums))
    return extract_folder(archive, data_dir, info.folder)  # only that folder is put in place


def _cifar_batch(path: Path, label_key: bytes) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR batch, refused unless it has the official structure (no silent casts)."""
    d = _unpickle(path)
    fix = "the file is not an official CIFAR batch; extract the official archive again"
    if not isinstance(d, dict):
        raise FwbenchError(f"CIFAR batch is a {type(d).__name__}, not a dict", path=path, fix=fix)
    for key in (b"data", label_key):
        if key not in d:
            raise FwbenchError(f"CIFAR batch has no '{key.decode()}' key", path=path, fix=fix)
    data = d[b"data"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8:
        kind = data.dtype if isinstance(data, np.ndarray) else type(data).__name__
        raise FwbenchError(f"CIFAR pixels are {kind}, expected uint8", path=path, fix=fix)
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise FwbenchError(
            f"CIFAR data has shape {data.shape}, expected (N, 3072)", path=path, fix=fix
        )
    labels = check_labels(d[label_key], data.shape[0], path, fix)
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels


def _class_names(path: Path, key: bytes, expected: int) -> list[str]:
    meta = _unpickle(path)
    names = meta.get(key) if isinstance(meta, dict) else None
    if not isinstance(names, list) or len(names) != expected:
        found = len(names) if isinstance(names, list) else "no"
        raise FwbenchError(
            f"{found} class names under '{key.decode()}', expected {expected}",
            path=path,
            fix="use the official meta file",
        )
    return [n.decode() if isinstance(n, bytes) else str(n) for n in names]


def read_cifar(
    name: str, source: Path, data_dir: Path, *, download: bool = False, checksums=None
) -> RawDataset:
    """CIFAR-10 or CIFAR-100 from the official python-version folder or archive."""
    info = get_dataset(name)
    folder = _locate_cifar(info, source, data_dir, download, checksums)
    missing = [f.name for f in info.files if not (folder / f.name).is_file()]
    if missing:
        raise FwbenchError(
            f"incomplete {info.name} folder: {', '.join(missing)} "
            + ("is" if len(missing) == 1 else "are")
            + " missing",
            path=folder / missing[0],
            fix="extract the official archive again",
        )
    for f in info.files:
        check_md5(folder / f.name, expected_md5(info, f.name, checksums))
    if name == "cifar10":
        parts = [_cifar_batch(folder / f"data_batch_{i}", b"labels") for i in range(1, 6)]
        test = _cifar_batch(folder / "test_batch", b"labels")
        classes = _class_names(folder / "batches.meta", b"label_names", info.num_classes)
    else:
        parts = [_cifar_batch(folder / "train", b"fine_labels")]
        test = _cifar_batch(folder / "test", b"fine_labels")
        classes = _class_names(folder / "meta", b"fine_label_names", info.num_classes)
    return RawDataset(
        name=name,
        train_images=np.concatenate([p[0] for p in parts]),
        train_labels=np.concatenate([p[1] for p in parts]),
        test_images=test[0],
        test_labels=test[1],
        classes=classes,
        source_files=[folder / f.name for f in info.files],
    )


# --- digits and synthetic ------------------------------------------------------------------------


def read_digits() -> RawDataset:
    """scikit-learn's 1,797 real 8x8 digits as 32x32 RGB (bilinear upsampling); 360 held out."""
    from PIL import Image
    from sklearn.datasets import load_digits

    from fwbench.data.splits import stratified_split

    d = load_digits()
    small = np.clip(d.images / 16.0 * 255.0, 0, 255).astype(np.uint8)
    big = np.stack(
        [np.asarray(Image.fromarray(im).resize((32, 32), Image.BILINEAR)) for im in small]
    )
    rgb = np.repeat(big[..., None], 3, axis=-1)
    labels = d.target.astype(np.int64)
    info = get_dataset("digits")
    pool_idx, test_idx = stratified_split(labels, info.test_size, seed=42)
    return RawDataset(
        name="digits",
        train_images=rgb[pool_idx],
        train_labels=labels[pool_idx],
        test_images=rgb[test_idx],
        test_labels=labels[test_idx],
        classes=[str(c) for c in d.target_names],
    )


def make_synthetic(n_per_class: int, num_classes: int = 10, size: int = 32, seed: int = 0):
    """Seeded, learnable images: each class is a colour and a stripe orientation, plus noise."""
    # The class colours come from seed 0 whatever ``seed`` is (a test set drawn with another
    # seed must share the training set's classes); ``seed`` only changes the noise.
    palette = np.random.default_rng(0).uniform(40, 215, size=(num_classes, 3))
    rng = np.random.default_rng(seed)
    rng.uniform(40, 215, size=(num_classes, 3))  # keep seed 0's noise stream as it was
    yy, xx = np.mgrid[0:size, 0:size]
    images, labels = [], []
    for c in range(num_classes):
        angle = np.pi * c / num_classes
        stripes = np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * 0.8)[..., None]
        base = palette[c] + 30.0 * stripes
        noise = rng.normal(0, 25, size=(n_per_class, size, size, 3))
        images.append(np.clip(base + noise, 0, 255).astype(np.uint8))
        labels.append(np.full(n_per_class, c, dtype=np.int64))
    return np.concatenate(images), np.concatenate(labels)


def read_synthetic() -> RawDataset:
    """The synthetic test set: 60 pool images and 20 test images per class."""
    info = get_dataset("synthetic")
    per_pool = info.pool_size // info.num_classes
    x, y = make_synthetic(per_pool, info.num_classes, info.image_size, seed=0)
    xt, yt = make_synthetic(info.test_size // info.num_classes, info.num_classes, 32, seed=1)
    return RawDataset("synthetic", x, y, xt, yt, [f"class_{i}" for i in range(info.num_classes)])


def read_dataset(
    name: str,
    source: Path,
    data_dir: Path,
    *,
    download: bool = False,
    checksums: Checksums | None = None,
    progress=None,
) -> RawDataset:
    """Read dataset ``name`` from ``source`` (a folder, archive or the data dir)."""
    get_dataset(name)
    if name in ("cifar10", "cifar100"):
        return read_cifar(name, source, data_dir, download=download, checksums=checksums)
    if name == "tiny-imagenet":
        from fwbench.data.tiny_imagenet import read_tiny_imagenet

        return read_tiny_imagenet(
            source, data_dir, download=download, checksums=checksums, progress=progress
        )
    if name == "digits":
        return read_digits()
    return read_synthetic()
