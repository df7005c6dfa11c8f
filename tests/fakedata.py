"""Writers of small datasets in the official formats (CIFAR pickles/tar.gz, Tiny-ImageNet).

Content is random; structure, keys, dtypes, file names and archive layout are the official ones.
"""

from __future__ import annotations

import json
import pickle
import tarfile
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from fwbench.core.fileio import md5_file


def _batch(
    rng, n: int, labels: np.ndarray, label_key: bytes, extra: dict, signal: float = 0.0
) -> dict:
    data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    if signal:  # a learnable set: each class a colour of its own, blended into the noise
        colours = np.random.default_rng(12345).integers(0, 256, size=(int(labels.max()) + 1, 3))
        planes = np.repeat(colours[labels], 1024, axis=1)  # CIFAR rows: 1024 R, 1024 G, 1024 B
        data = np.round((1 - signal) * data + signal * planes).astype(np.uint8)
    d = {
        b"batch_label": b"fake batch",
        label_key: labels.tolist(),
        b"data": data,
        b"filenames": [f"img_{i}.png".encode() for i in range(n)],
    }
    d.update(extra)
    return d


def _dump(obj: dict, path: Path) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)


def write_cifar10(
    root: Path, per_class_per_batch: int = 2, per_class_test: int = 2, seed=0, signal: float = 0.0
):
    """``root/cifar-10-batches-py/`` with 5 data batches, test_batch and batches.meta.

    ``signal`` > 0 blends a colour per class into the noise, so a model can learn the set
    (``scripts/gpu-check.sh``: a smoke's loss must fall); 0 is pure noise.
    """
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(1, 6):
        labels = rng.permutation(np.repeat(np.arange(10), per_class_per_batch))
        batch = _batch(rng, labels.size, labels, b"labels", {}, signal)
        _dump(batch, folder / f"data_batch_{i}")
    labels = rng.permutation(np.repeat(np.arange(10), per_class_test))
    _dump(_batch(rng, labels.size, labels, b"labels", {}, signal), folder / "test_batch")
    names = [
        n.encode()
        for n in [
            "airplane",
            "automobile",
            "bird",
            "cat",
            "deer",
            "dog",
            "frog",
            "horse",
            "ship",
            "truck",
        ]
    ]
    _dump(
        {b"label_names": names, b"num_cases_per_batch": 10000, b"num_vis": 3072},
        folder / "batches.meta",
    )
    return folder


def write_cifar100(root: Path, per_class_train: int = 5, per_class_test: int = 1, seed=0):
    """``root/cifar-100-python/`` with train, test and meta (fine and coarse labels)."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True, exist_ok=True)
    for name, per in (("train", per_class_train), ("test", per_class_test)):
        fine = rng.permutation(np.repeat(np.arange(100), per))
        extra = {b"coarse_labels": (fine // 5).tolist()}
        _dump(_batch(rng, fine.size, fine, b"fine_labels", extra), folder / name)
    _dump(
        {
            b"fine_label_names": [f"fine{i}".encode() for i in range(100)],
            b"coarse_label_names": [f"coarse{i}".encode() for i in range(20)],
        },
        folder / "meta",
    )
    return folder


def make_tar_gz(folder: Path, archive: Path) -> Path:
    """The official archive layout: one top-level folder inside a .tar.gz."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(folder, arcname=folder.name)
    return archive


def checksums_for(*paths: Path) -> dict[str, str]:
    """{file name: md5} for files, or for every file inside folders."""
    out = {}
    for p in paths:
        for f in [p] if p.is_file() else sorted(x for x in p.iterdir() if x.is_file()):
            out[f.name] = md5_file(f)
    return out


def write_checksums(path: Path, sums: dict[str, str]) -> Path:
    path.write_text(json.dumps(sums))
    return path


def write_tiny_imagenet(
    root: Path, n_classes=200, per_class=10, val_per_class=2, gray_every=7, seed=0
) -> Path:
    """``root/tiny-imagenet-200/`` in the official layout; every ``gray_every``-th JPEG is 'L'."""
    rng = np.random.default_rng(seed)
    folder = root / "tiny-imagenet-200"
    wnids = [f"n{1000000 + i:08d}" for i in range(n_classes)]
    folder.mkdir(parents=True)
    (folder / "wnids.txt").write_text("\n".join(wnids) + "\n")
    (folder / "words.txt").write_text(
        "".join(f"{w}\tthing {i}, other\n" for i, w in enumerate(wnids))
    )
    count = 0

    def save(path: Path) -> None:
        nonlocal count
        count += 1
        arr = rng.integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
        img = Image.fromarray(arr)
        if count % gray_every == 0:
            img = img.convert("L")
        img.save(path, format="JPEG")

    for w in wnids:
        d = folder / "train" / w / "images"
        d.mkdir(parents=True)
        for i in range(per_class):
            save(d / f"{w}_{i}.JPEG")
        (folder / "train" / w / f"{w}_boxes.txt").write_text(
            "".join(f"{w}_{i}.JPEG\t0\t0\t63\t63\n" for i in range(per_class))
        )
    (folder / "val" / "images").mkdir(parents=True)
    lines = []
    k = 0
    for w in wnids:
        for _ in range(val_per_class):
            name = f"val_{k}.JPEG"
            save(folder / "val" / "images" / name)
            lines.append(f"{name}\t{w}\t0\t0\t63\t63")
            k += 1
    (folder / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    (folder / "test" / "images").mkdir(parents=True)
    save(folder / "test" / "images" / "test_0.JPEG")
    return folder


def make_zip(folder: Path, archive: Path) -> Path:
    """The official zip layout: ``tiny-imagenet-200/...`` at the top."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(archive, "w") as zf:
        for f in sorted(folder.rglob("*")):
            zf.write(f, f.relative_to(folder.parent))
    return archive
