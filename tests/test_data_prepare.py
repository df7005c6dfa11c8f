"""Data preparation from official formats: loading, checksums, splits, stats, user errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from fakedata import (
    checksums_for,
    make_tar_gz,
    make_zip,
    write_checksums,
    write_cifar10,
    write_cifar100,
    write_tiny_imagenet,
)
from fwbench.core.errors import FwbenchError
from fwbench.core.paths import Workspace
from fwbench.data.prepare import prepare
from fwbench.data.store import load_split, load_stats


@pytest.fixture
def ws(tmp_path):
    return Workspace(tmp_path / "ws")


@pytest.fixture
def cifar10_archive(tmp_path):
    folder = write_cifar10(tmp_path / "src")
    return make_tar_gz(folder, tmp_path / "dl" / "cifar-10-python.tar.gz")


def test_cifar10_archive_is_extracted_checked_and_split(ws, tmp_path, cifar10_archive):
    sums = checksums_for(cifar10_archive, tmp_path / "src" / "cifar-10-batches-py")
    result = prepare(ws, "cifar10", source=cifar10_archive, checksums=sums, partial=True)
    assert result.ok, result.checks
    # 5 batches x 2 per class x 10 classes = 100 pool images; val = 10% stratified
    assert result.manifest["sizes"] == {"train": 90, "val": 10, "test": 20}
    assert result.manifest["per_class"]["val"] == [1] * 10
    assert result.manifest["per_class"]["train"] == [9] * 10
    assert (ws.data_dir / "cifar-10-batches-py" / "data_batch_1").is_file()
    train = load_split(ws, "cifar10", "train")
    assert train.images.shape == (90, 32, 32, 3) and train.images.dtype == np.uint8
    classes = json.loads((ws.prepared_dir / "cifar10" / "classes.json").read_text())
    assert classes[0] == "airplane" and len(classes) == 10


def test_cifar10_pixels_are_the_official_row_major_layout(ws, tmp_path):
    folder = write_cifar10(tmp_path / "src")
    prepare(ws, "cifar10", source=folder, checksums=checksums_for(folder), partial=True)
    import pickle

    with open(folder / "test_batch", "rb") as f:
        raw = pickle.load(f, encoding="bytes")
    test = load_split(ws, "cifar10", "test")
    # CIFAR rows are 1024 red, then 1024 green, then 1024 blue values, each row-major 32x32
    first = raw[b"data"][0]
    assert test.images[0, 0, 0].tolist() == [first[0], first[1024], first[2048]]
    assert test.images[0, 0, 1, 0] == first[1]
    assert test.images[0, 1, 0, 2] == first[2048 + 32]
    assert test.labels.tolist() == raw[b"labels"]


def test_cifar100_uses_fine_labels(ws, tmp_path):
    folder = write_cifar100(tmp_path / "src")
    result = prepare(ws, "cifar100", source=folder, checksums=checksums_for(folder), partial=True)
    assert result.ok
    assert result.manifest["sizes"] == {"train": 400, "val": 100, "test": 100}  # >= 1 val per class
    assert max(load_split(ws, "cifar100", "train").labels) == 99


def test_official_checksums_refuse_foreign_files_before_unpickling(ws, tmp_path):
    folder = write_cifar10(tmp_path / "src")
    with pytest.raises(FwbenchError, match="checksum mismatch") as e:
        prepare(ws, "cifar10", source=folder, partial=True)  # official MD5s: these differ
    assert "data_batch_1" in e.value.message
    assert not ws.prepared_dir.exists()


def test_truncated_archive_is_a_clear_error_and_writes_nothing(ws, tmp_path, cifar10_archive):
    sums = checksums_for(cifar10_archive)
    data = cifar10_archive.read_bytes()
    cifar10_archive.write_bytes(data[: len(data) // 2])
    with pytest.raises(FwbenchError, match="checksum mismatch"):
        prepare(ws, "cifar10", source=cifar10_archive, checksums=sums, partial=True)
    # with the truncated file's own checksum it gets past MD5 and fails in tar
    sums = checksums_for(cifar10_archive)
    with pytest.raises(FwbenchError, match="truncated or corrupt"):
        prepare(ws, "cifar10", source=cifar10_archive, checksums=sums, partial=True)
    assert not (ws.splits_dir / "cifar10").exists()


def test_unsafe_tar_member_is_refused(ws, tmp_path):
    import io
    import tarfile

    evil = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(evil, "w:gz") as tf:
        payload = b"owned"
        info = tarfile.TarInfo("../escape.txt")
        info.size = len(payload)
        tf.addfile(info, io.BytesIO(payload))
    with pytest.raises(FwbenchError, match="unsafe member"):
        prepare(ws, "cifar10", source=evil, checksums=checksums_for(evil), partial=True)
    assert (
        not (ws.root / "escape.txt").exists() and not (ws.data_dir.parent / "escape.txt").exists()
    )


def test_pickle_with_code_is_refused_even_with_matching_checksum(ws, tmp_path):
    folder = write_cifar10(tmp_path / "src")
    import os
    import pickle

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    with open(folder / "data_batch_1", "wb") as f:
        pickle.dump({b"data": Evil()}, f, protocol=2)
    with pytest.raises(FwbenchError, match="refusing to load"):
        prepare(ws, "cifar10", source=folder, checksums=checksums_for(folder), partial=True)


def test_incomplete_cifar_folder_names_the_missing_file(ws, tmp_path):
    folder = write_cifar10(tmp_path / "src")
    (folder / "data_batch_3").unlink()
    with pytest.raises(FwbenchError, match="data_batch_3 is missing"):
        prepare(ws, "cifar10", source=folder, checksums=checksums_for(folder), partial=True)


def test_small_source_needs_partial_flag(ws, tmp_path):
    folder = write_cifar10(tmp_path / "src")
    with pytest.raises(FwbenchError, match="official set has 50000 / 10000") as e:
        prepare(ws, "cifar10", source=folder, checksums=checksums_for(folder))
    assert "--partial" in e.value.message


def test_tiny_imagenet_folder_grayscale_becomes_rgb_and_val_is_test(ws, tmp_path):
    folder = write_tiny_imagenet(tmp_path / "src", per_class=3, val_per_class=1)
    result = prepare(ws, "tiny-imagenet", source=folder, partial=True)
    assert result.ok
    assert result.manifest["sizes"] == {"train": 400, "val": 200, "test": 200}
    assert result.manifest["per_class"]["test"] == [1] * 200
    test = load_split(ws, "tiny-imagenet", "test")
    assert test.images.shape == (200, 64, 64, 3)
    # every 7th JPEG was saved as grayscale: it must come back as 3 equal channels
    train = load_split(ws, "tiny-imagenet", "train")
    gray = [
        i
        for i in range(len(train))
        if np.array_equal(train.images[i, ..., 0], train.images[i, ..., 2])
    ]
    assert gray, "grayscale JPEGs must be present and expanded to 3 equal channels"
    classes = json.loads((ws.prepared_dir / "tiny-imagenet" / "classes.json").read_text())
    assert classes[0] == "thing 0"


@pytest.mark.slow
def test_tiny_imagenet_zip_and_npy_sources(ws, tmp_path):
    folder = write_tiny_imagenet(tmp_path / "src", per_class=2, val_per_class=1)
    archive = make_zip(folder, tmp_path / "dl" / "tiny-imagenet-200.zip")
    result = prepare(
        ws, "tiny-imagenet", source=archive, checksums=checksums_for(archive), partial=True
    )
    assert result.manifest["sizes"]["test"] == 200
    # the seed's four .npy files
    npy_dir = tmp_path / "npy"
    npy_dir.mkdir()
    rng = np.random.default_rng(0)
    np.save(
        npy_dir / "tiny_imagenet_train_images.npy",
        rng.integers(0, 255, (400, 64, 64, 3), dtype=np.uint8),
    )
    np.save(npy_dir / "tiny_imagenet_train_labels.npy", np.repeat(np.arange(200), 2))
    np.save(
        npy_dir / "tiny_imagenet_test_images.npy",
        rng.integers(0, 255, (200, 64, 64), dtype=np.uint8),
    )  # grayscale array
    np.save(npy_dir / "tiny_imagenet_test_labels.npy", np.arange(200))
    ws2 = Workspace(tmp_path / "ws2")
    prepare(ws2, "tiny-imagenet", source=npy_dir, partial=True)
    test = load_split(ws2, "tiny-imagenet", "test").images
    assert test.shape == (200, 64, 64, 3)
    assert np.array_equal(test[..., 0], test[..., 2])


def test_tiny_imagenet_missing_annotation_image(ws, tmp_path):
    folder = write_tiny_imagenet(tmp_path / "src", per_class=1, val_per_class=1)
    (folder / "val" / "images" / "val_1.JPEG").unlink()
    with pytest.raises(FwbenchError, match="val_1.JPEG listed but missing"):
        prepare(ws, "tiny-imagenet", source=folder, partial=True)


def test_same_seed_gives_identical_indices(tmp_path):
    a, b = Workspace(tmp_path / "a"), Workspace(tmp_path / "b")
    prepare(a, "digits")
    prepare(b, "digits")
    for split in ("train_indices.npy", "val_indices.npy"):
        assert np.array_equal(
            np.load(a.splits_dir / "digits" / split), np.load(b.splits_dir / "digits" / split)
        )


def test_stats_equal_numpy_on_the_training_split_only(ws):
    prepare(ws, "synthetic")
    train = load_split(ws, "synthetic", "train")
    x = train.images.astype(np.float64) / 255.0
    mean, std = load_stats(ws, "synthetic")
    np.testing.assert_allclose(mean, x.mean(axis=(0, 1, 2)), rtol=1e-6)
    np.testing.assert_allclose(std, x.std(axis=(0, 1, 2)), rtol=1e-6)
    pool = np.load(ws.prepared_dir / "synthetic" / "train_images.npy") / 255.0
    assert not np.allclose(mean, pool.mean(axis=(0, 1, 2)), rtol=0, atol=1e-7)
    entry = yaml.safe_load(ws.stats_file.read_text())["synthetic"]
    assert entry["computed_on"] == "train" and entry["n_images"] == 500


def test_stats_file_keeps_other_datasets(ws):
    prepare(ws, "synthetic")
    prepare(ws, "digits")
    assert set(yaml.safe_load(ws.stats_file.read_text())) == {"digits", "synthetic"}


def test_rerun_on_unchanged_sources_does_nothing(ws):
    first = prepare(ws, "digits")
    before = (ws.splits_dir / "digits" / "train_indices.npy").stat().st_mtime_ns
    again = prepare(ws, "digits")
    assert not first.up_to_date and again.up_to_date
    assert (ws.splits_dir / "digits" / "train_indices.npy").stat().st_mtime_ns == before


def test_rerun_after_source_change_redoes_the_work(ws, tmp_path):
    folder = write_cifar10(tmp_path / "src")
    sums = checksums_for(folder)
    prepare(ws, "cifar10", source=folder, checksums=sums, partial=True)
    write_cifar10(tmp_path / "src", seed=1)  # same layout, other pixels
    sums = checksums_for(folder)
    assert not prepare(ws, "cifar10", source=folder, checksums=sums, partial=True).up_to_date


def test_damaged_output_is_redone(ws):
    prepare(ws, "digits")
    (ws.splits_dir / "digits" / "val_indices.npy").write_bytes(b"garbage")
    assert not prepare(ws, "digits").up_to_date
    assert len(load_split(ws, "digits", "val")) == 180


def test_digits_are_real_upsampled_digits(ws):
    prepare(ws, "digits")
    sizes = json.loads((ws.splits_dir / "digits" / "manifest.json").read_text())["sizes"]
    assert sizes == {"train": 1257, "val": 180, "test": 360}
    test = load_split(ws, "digits", "test")
    assert test.images.shape == (360, 32, 32, 3)
    # stratified: each class holds ~20% of its 174-183 images
    assert all(34 <= c <= 37 for c in np.bincount(test.labels))
    assert test.images.max() > 200 and test.images.min() == 0


def test_unprepared_dataset_tells_how_to_prepare(ws):
    with pytest.raises(FwbenchError, match="fwbench data prepare cifar100"):
        load_split(ws, "cifar100", "train")


# --- the CLI: one clear line, exit 2 ---------------------------------------------------------


def test_cli_prepare_validations_and_up_to_date(run_cli, tmp_path):
    r = run_cli("data", "prepare", "digits", "--workspace", tmp_path)
    assert r.code == 0, r.err
    for check in ("split sizes", "disjoint", "per-class balance", "train split only"):
        assert check in r.out
    assert "1,257 / 180 / 360" in r.out
    r = run_cli("data", "prepare", "digits", "--workspace", tmp_path)
    assert r.code == 0 and "up to date, nothing to do" in r.out


def test_cli_checksum_mismatch_is_one_line_exit_2(run_cli, tmp_path):
    folder = write_cifar10(tmp_path / "src")
    sums = checksums_for(folder)
    sums["data_batch_2"] = "0" * 32
    r = run_cli(
        "data",
        "prepare",
        "cifar10",
        "--source",
        folder,
        "--partial",
        "--checksums",
        write_checksums(tmp_path / "sums.json", sums),
        "-w",
        tmp_path / "w",
    )
    assert r.code == 2
    assert r.err.count("\n") == 1 and "Traceback" not in r.err
    assert "checksum mismatch" in r.err and "data_batch_2" in r.err


@pytest.mark.parametrize(
    "args, message",
    [
        (["data", "prepare", "imagenet"], "unknown dataset 'imagenet'; known: cifar10"),
        (["data", "prepare", "cifar10"], "cifar10 not found"),
        (["data", "prepare", "tiny-imagenet"], "pass --download"),
    ],
)
def test_cli_user_errors(run_cli, tmp_path, args, message):
    r = run_cli(*args, "-w", tmp_path)
    assert r.code == 2 and message in r.err and "Traceback" not in r.err


def test_cli_error_leaves_earlier_outputs_intact(run_cli, tmp_path):
    assert run_cli("data", "prepare", "digits", "-w", tmp_path).code == 0
    stats_before = (tmp_path / "configs" / "dataset_stats.yaml").read_text()
    assert run_cli("data", "prepare", "cifar10", "-w", tmp_path).code == 2
    assert (tmp_path / "configs" / "dataset_stats.yaml").read_text() == stats_before
    assert run_cli("data", "prepare", "digits", "-w", tmp_path).out.count("up to date") == 1


def test_rerun_after_raw_files_were_deleted_keeps_outputs(ws, tmp_path):
    import shutil

    folder = write_cifar10(tmp_path / "src")
    prepare(ws, "cifar10", source=folder, checksums=checksums_for(folder), partial=True)
    shutil.rmtree(folder)
    assert prepare(ws, "cifar10", source=folder, partial=True).up_to_date
