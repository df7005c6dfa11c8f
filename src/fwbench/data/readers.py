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
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fwbench.data.catalog import DatasetInfo, get_dataset
from fwbench.data.safe_archive import extract_tar, extract_zip
from fwbench.errors import FwbenchError
from fwbench.fileio import md5_file

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


def _check_md5(path: Path, expected: str) -> None:
    actual = md5_file(path)
    if actual != expected:
        raise FwbenchError(
            f"checksum mismatch: MD5 {actual}, expected {expected}",
            path=path,
            fix="the file is corrupt or not the official one; download it again (--download)",
        )


def _expected_md5(info: DatasetInfo, name: str, checksums: Checksums | None) -> str:
    if checksums and name in checksums:
        return checksums[name]
    official = {f.name: f.md5 for f in info.files}
    if info.archive:
        official[info.archive.name] = info.archive.md5
    return official[name]


class _CifarUnpickler(pickle.Unpickler):
    """Only what CIFAR pickles contain: dicts, lists, bytes and numpy arrays."""

    _allowed = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),  # how protocol-2 pickles written by Python 3 store bytes
    }

    def find_class(self, module: str, name: str):
        if (module, name) in self._allowed:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _unpickle(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            return _CifarUnpickler(f, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, KeyError) as e:
        raise FwbenchError(
            f"cannot read CIFAR batch ({e})", path=path, fix="download the dataset again"
        ) from None


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


def _locate_cifar(info: DatasetInfo, source: Path, data_dir: Path, fetch: bool, sums) -> Path:
    """The extracted CIFAR folder: given directly, found in source/data_dir, or extracted."""
    assert info.folder and info.archive
    for cand in (source, source / info.folder, data_dir / info.folder):
        if cand.is_dir() and (cand / info.files[0].name).exists():
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
    _check_md5(archive, _expected_md5(info, info.archive.name, sums))
    extract_tar(archive, data_dir)
    folder = data_dir / info.folder
    if not folder.is_dir():
        raise FwbenchError(
            f"archive did not contain {info.folder}/", path=archive, fix="use the official archive"
        )
    return folder


def _cifar_batch(path: Path, label_key: bytes) -> tuple[np.ndarray, np.ndarray]:
    d = _unpickle(path)
    data = np.asarray(d[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(data), np.asarray(d[label_key], dtype=np.int64)


def read_cifar(
    name: str, source: Path, data_dir: Path, *, download: bool = False, checksums=None
) -> RawDataset:
    """CIFAR-10 or CIFAR-100 from the official python-version folder or archive."""
    info = get_dataset(name)
    folder = _locate_cifar(info, source, data_dir, download, checksums)
    for f in info.files:
        path = folder / f.name
        if not path.is_file():
            raise FwbenchError(
                f"incomplete {info.name} folder: {f.name} is missing",
                path=folder,
                fix="extract the official archive again",
            )
        _check_md5(path, _expected_md5(info, f.name, checksums))
    if name == "cifar10":
        parts = [_cifar_batch(folder / f"data_batch_{i}", b"labels") for i in range(1, 6)]
        test = _cifar_batch(folder / "test_batch", b"labels")
        classes = [c.decode() for c in _unpickle(folder / "batches.meta")[b"label_names"]]
    else:
        parts = [_cifar_batch(folder / "train", b"fine_labels")]
        test = _cifar_batch(folder / "test", b"fine_labels")
        classes = [c.decode() for c in _unpickle(folder / "meta")[b"fine_label_names"]]
    return RawDataset(
        name=name,
        train_images=np.concatenate([p[0] for p in parts]),
        train_labels=np.concatenate([p[1] for p in parts]),
        test_images=test[0],
        test_labels=test[1],
        classes=classes,
        source_files=[folder / f.name for f in info.files],
    )


# --- Tiny-ImageNet -----------------------------------------------------------------------------

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


def _tiny_from_folder(folder: Path, progress) -> RawDataset:
    wnids_file = folder / "wnids.txt"
    ann_file = folder / "val" / "val_annotations.txt"
    for required in (wnids_file, folder / "train", ann_file, folder / "val" / "images"):
        if not required.exists():
            raise FwbenchError(
                f"incomplete tiny-imagenet-200 folder: {required.relative_to(folder)} is missing",
                path=folder,
                fix="extract the official tiny-imagenet-200.zip again",
            )
    wnids = [w.strip() for w in wnids_file.read_text().split() if w.strip()]
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
    for line_no, line in enumerate(ann_file.read_text().splitlines(), 1):
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
        for line in (folder / "words.txt").read_text().splitlines():
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
    images = {}
    for split in ("train", "test"):
        x = arrays[f"{split}_images"]
        if x.ndim == 3:  # grayscale array -> RGB
            x = np.repeat(x[..., None], 3, axis=-1)
        elif x.ndim == 4 and x.shape[-1] == 1:
            x = np.repeat(x, 3, axis=-1)
        if x.ndim != 4 or x.shape[1:] != (64, 64, 3) or x.dtype != np.uint8:
            raise FwbenchError(
                f"tiny_imagenet_{split}_images.npy has shape {x.shape} dtype {x.dtype}; "
                "expected (N, 64, 64, 3) uint8",
                path=paths[f"{split}_images"],
                fix="save images as uint8 NHWC arrays",
            )
        images[split] = x
    n = int(max(arrays["train_labels"].max(), arrays["test_labels"].max())) + 1
    return RawDataset(
        name="tiny-imagenet",
        train_images=images["train"],
        train_labels=arrays["train_labels"].astype(np.int64),
        test_images=images["test"],
        test_labels=arrays["test_labels"].astype(np.int64),
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
        if cand.is_dir() and (cand / "wnids.txt").exists():
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
    _check_md5(archive, _expected_md5(info, info.archive.name, checksums))
    extract_zip(archive, data_dir)
    return _tiny_from_folder(data_dir / info.folder, progress)


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
        return read_tiny_imagenet(
            source, data_dir, download=download, checksums=checksums, progress=progress
        )
    if name == "digits":
        return read_digits()
    return read_synthetic()
