"""Tiny-ImageNet-200 reader: the official folder, its zip, or the seed's four ``.npy`` files.

The labelled ``val/`` set is fwbench's test set (the official test set has no labels);
grayscale and CMYK JPEGs become RGB.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from fwbench.core.errors import FwbenchError
from fwbench.data.raw import (
    RawDataset,
    check_labels,
    check_md5,
    download_file,
    expected_md5,
)
from fwbench.data.safe_archive import extract_folder
from fwbench.registry.datasets import get_dataset

TINY_NPY = ("train_images", "train_labels", "test_images", "test_labels")


def _load_rgb(path: Path, size: int) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im = im.convert("RGB")  # grayscale (and CMYK) images become 3-channel
            if im.size != (size, size):
                raise FwbenchError(
                    f"image is {im.size[0]}x{im.size[1]}, expected {size}x{size}",
                    path=path,
                    fix="use the official Tiny-ImageNet files",
                )
            return np.asarray(im, dtype=np.uint8)
    except (UnidentifiedImageError, OSError) as e:
        raise FwbenchError(
            f"cannot read image ({e})", path=path, fix="extract the dataset again"
        ) from None


def _load_images(paths: list[Path], size: int, progress: Callable[[int], None] | None):
    out = np.empty((len(paths), size, size, 3), dtype=np.uint8)
    with ThreadPoolExecutor(max_workers=4) as pool:
        for i, img in enumerate(pool.map(lambda p: _load_rgb(p, size), paths)):
            out[i] = img
            if progress and i % 1000 == 999:
                progress(1000)
    return out


def _text(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise FwbenchError(
            f"not UTF-8 text (byte {e.start})", path=path, fix="use the official file"
        ) from None


def _tiny_from_folder(folder: Path, progress) -> RawDataset:
    wnids_file = folder / "wnids.txt"
    ann_file = folder / "val" / "val_annotations.txt"
    for required in (wnids_file, folder / "train", ann_file, folder / "val" / "images"):
        if not required.exists():
            raise FwbenchError(
                f"incomplete tiny-imagenet-200 folder: {required.relative_to(folder)} is missing",
                path=required,
                fix="extract the official tiny-imagenet-200.zip again",
            )
    wnids = [w.strip() for w in _text(wnids_file).split() if w.strip()]
    if len(wnids) != 200 or len(set(wnids)) != len(wnids):
        raise FwbenchError(
            f"wnids.txt lists {len(set(wnids))} distinct classes, expected 200",
            path=wnids_file,
            fix="use the official wnids.txt",
        )
    index = {w: i for i, w in enumerate(wnids)}
    train_paths, train_labels = [], []
    for w in wnids:
        img_dir = folder / "train" / w / "images"
        files = sorted(img_dir.glob("*.JPEG")) if img_dir.is_dir() else []
        if not files:
            raise FwbenchError(
                f"incomplete tiny-imagenet-200 folder: no images for class {w}",
                path=img_dir,
                fix="extract the official tiny-imagenet-200.zip again",
            )
        train_paths += files
        train_labels += [index[w]] * len(files)
    test_paths, test_labels = [], []
    for line_no, line in enumerate(_text(ann_file).splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) < 2 or parts[1] not in index:
            raise FwbenchError(
                f"val_annotations.txt line {line_no} is malformed or names an unknown class",
                path=ann_file,
                fix="use the official annotations file",
            )
        img = folder / "val" / "images" / parts[0]
        if not img.is_file():
            raise FwbenchError(
                f"incomplete tiny-imagenet-200 folder: {parts[0]} listed but missing",
                path=img.parent,
                fix="extract the official tiny-imagenet-200.zip again",
            )
        test_paths.append(img)
        test_labels.append(index[parts[1]])
    words = {}
    if (folder / "words.txt").is_file():
        for line in _text(folder / "words.txt").splitlines():
            k, _, v = line.partition("\t")
            words[k] = v.split(",")[0].strip()
    return RawDataset(
        name="tiny-imagenet",
        train_images=_load_images(train_paths, 64, progress),
        train_labels=np.asarray(train_labels, dtype=np.int64),
        test_images=_load_images(test_paths, 64, progress),
        test_labels=np.asarray(test_labels, dtype=np.int64),
        classes=[words.get(w, w) for w in wnids],
        source_files=[wnids_file, ann_file, folder / "train", folder / "val" / "images"],
    )


def _tiny_from_npy(paths: dict[str, Path]) -> RawDataset:
    try:
        arrays = {k: np.load(p, allow_pickle=False) for k, p in paths.items()}
    except (ValueError, OSError) as e:
        raise FwbenchError(
            f"cannot read Tiny-ImageNet .npy files ({e})",
            path=next(iter(paths.values())).parent,
            fix="regenerate the four tiny_imagenet_*.npy files",
        ) from None
    images, labels = {}, {}
    fix = "regenerate the four tiny_imagenet_*.npy files"
    for split in ("train", "test"):
        x = arrays[f"{split}_images"]
        if x.ndim == 3:  # grayscale array -> RGB
            x = np.repeat(x[..., None], 3, axis=-1)
        elif x.ndim == 4 and x.shape[-1] == 1:
            x = np.repeat(x, 3, axis=-1)
        if x.ndim != 4 or x.shape[1:] != (64, 64, 3) or x.dtype != np.uint8 or not len(x):
            raise FwbenchError(
                f"tiny_imagenet_{split}_images.npy has shape {x.shape} dtype {x.dtype}; "
                "expected (N, 64, 64, 3) uint8 with N > 0",
                path=paths[f"{split}_images"],
                fix="save images as uint8 NHWC arrays",
            )
        images[split] = x
        labels[split] = check_labels(
            arrays[f"{split}_labels"], len(x), paths[f"{split}_labels"], fix
        )
    n = int(max(labels["train"].max(), labels["test"].max())) + 1
    return RawDataset(
        name="tiny-imagenet",
        train_images=images["train"],
        train_labels=labels["train"],
        test_images=images["test"],
        test_labels=labels["test"],
        classes=[f"class_{i}" for i in range(n)],
        source_files=list(paths.values()),
    )


def read_tiny_imagenet(
    source: Path, data_dir: Path, *, download: bool = False, checksums=None, progress=None
) -> RawDataset:
    """Tiny-ImageNet from its official folder, its zip, or the seed's four ``.npy`` files."""
    info = get_dataset("tiny-imagenet")
    assert info.folder and info.archive
    for cand in (source, source / info.folder, data_dir / info.folder):
        if cand.is_dir() and (
            cand.name == info.folder or any((cand / n).exists() for n in ("wnids.txt", "train"))
        ):
            return _tiny_from_folder(cand, progress)
    for base in (source, data_dir):
        npy = {k: base / f"tiny_imagenet_{k}.npy" for k in TINY_NPY}
        if base.is_dir() and all(p.is_file() for p in npy.values()):
            return _tiny_from_npy(npy)
    for cand in (source, source / info.archive.name, data_dir / info.archive.name):
        if cand.is_file():
            archive = cand
            break
    else:
        if not download:
            raise FwbenchError(
                "tiny-imagenet not found: no tiny-imagenet-200/ folder, zip or "
                "tiny_imagenet_{train,test}_{images,labels}.npy files",
                path=source,
                fix=f"put the official files there, or pass --download (from {info.url})",
            )
        archive = download_file(info.url or "", data_dir / info.archive.name)
    check_md5(archive, expected_md5(info, info.archive.name, checksums))
    return _tiny_from_folder(extract_folder(archive, data_dir, info.folder), progress)
