"""Writes stay inside their own target: a workspace that is not a usable folder, a workspace
folder that leads outside it, a config path that is a folder, a ``--run-dir`` that is not a run
directory, an archive holding another dataset: one line each, exit 2, nothing written."""

from __future__ import annotations

import pytest

import runfixtures
from badinputs import assert_one_line, tree_hashes
from fakedata import checksums_for, make_tar_gz, write_checksums, write_cifar10, write_cifar100

TRAIN = ("train", "--framework", "pytorch", "--dataset", "digits", "--model", "mobilenetv2")
COMMANDS = [
    ("status",),
    ("collect",),
    ("analyze",),
    ("run", "--stage", "demo", "--dry-run"),
    ("config", "show"),
    ("data", "prepare", "digits"),
    TRAIN,
]


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_a_workspace_that_is_a_file_is_one_line(run_cli, tmp_path, monkeypatch, args):
    path = tmp_path / "ws"
    path.write_text("not a folder")
    monkeypatch.setenv("FWBENCH_WORKSPACE", str(path))
    assert_one_line(run_cli(*args), 2, "the workspace is a file, not a folder", str(path))
    assert path.read_text() == "not a folder"


@pytest.mark.parametrize("args", [a for a in COMMANDS if a[0] != "data"], ids=" ".join)
def test_a_missing_workspace_is_one_line_and_stays_missing(run_cli, tmp_path, monkeypatch, args):
    path = tmp_path / "nosuch"
    monkeypatch.setenv("FWBENCH_WORKSPACE", str(path))
    assert_one_line(run_cli(*args), 2, "the workspace does not exist", str(path))
    assert not path.exists()


@pytest.fixture
def fx(tmp_path, monkeypatch):
    ws = runfixtures.build_workspace(tmp_path / "fx")
    monkeypatch.setenv("FWBENCH_WORKSPACE", str(ws))
    return ws


@pytest.mark.parametrize("dangling", [True, False], ids=["dangling", "to a folder outside"])
@pytest.mark.parametrize("folder", ["runs", "results"])
def test_a_workspace_folder_leading_outside_is_refused(run_cli, fx, tmp_path, dangling, folder):
    import shutil

    outside = tmp_path / "elsewhere"
    if not dangling:
        outside.mkdir()
    shutil.rmtree(fx / folder, ignore_errors=True)
    (fx / folder).symlink_to(outside)
    before = tree_hashes(fx)
    for args in (("status", "--stage", runfixtures.STAGE), ("collect",)):
        line = assert_one_line(run_cli(*args), 2, f"workspace folder {folder}/", str(outside))
        assert ("does not exist" if dangling else "leads outside the workspace") in line
    assert tree_hashes(fx) == before
    assert outside.exists() != dangling and (dangling or not any(outside.iterdir()))


def test_a_config_path_that_is_a_folder_is_named_as_such(run_cli, fx, tmp_path):
    assert_one_line(
        run_cli("config", "show", "--config", tmp_path), 2, "config path is a folder", str(tmp_path)
    )


@pytest.mark.parametrize("with_identity", [True, False])
def test_run_dir_refuses_a_folder_that_is_not_a_run_directory(run_cli, fx, tmp_path, with_identity):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "status.json").write_text('{"state": "mine"}')
    args = (*TRAIN, "--run-dir", mine) if with_identity else ("train", "--run-dir", mine)
    needle = "not an fwbench run directory" if with_identity else "no spec.json"
    assert_one_line(run_cli(*args), 2, needle, str(mine))
    assert [p.name for p in mine.iterdir()] == ["status.json"]
    assert (mine / "status.json").read_text() == '{"state": "mine"}'


def test_an_archive_of_another_dataset_changes_nothing_in_data(run_cli, tmp_path, monkeypatch):
    ws = tmp_path / "ws"
    (ws / "configs").mkdir(parents=True)
    monkeypatch.setenv("FWBENCH_WORKSPACE", str(ws))
    theirs = write_cifar100(ws / "data")  # an existing, prepared-from CIFAR-100 folder
    before = tree_hashes(ws)
    wrong = make_tar_gz(write_cifar100(tmp_path / "src"), tmp_path / "cifar-10-python.tar.gz")
    sums = write_checksums(tmp_path / "sums.json", checksums_for(wrong))
    result = run_cli(
        "data", "prepare", "cifar10", "--source", wrong, "--checksums", sums, "--partial"
    )
    assert_one_line(result, 2, "archive did not contain cifar-10-batches-py/")
    assert tree_hashes(ws) == before and theirs.is_dir()
    assert sorted(p.name for p in (ws / "data").iterdir()) == [theirs.name]


def test_an_archive_puts_only_its_dataset_folder_in_place(run_cli, tmp_path, monkeypatch):
    ws = tmp_path / "ws"
    (ws / "configs").mkdir(parents=True)
    monkeypatch.setenv("FWBENCH_WORKSPACE", str(ws))
    folder = write_cifar10(tmp_path / "src" / "pkg")
    (tmp_path / "src" / "pkg" / "extra.txt").write_text("an extra member")
    archive = tmp_path / "cifar-10-python.tar.gz"
    import tarfile

    with tarfile.open(archive, "w:gz") as tf:
        tf.add(folder, arcname=folder.name)
        tf.add(tmp_path / "src" / "pkg" / "extra.txt", arcname="extra.txt")
    sums = write_checksums(tmp_path / "sums.json", checksums_for(archive, folder))
    result = run_cli(
        "data", "prepare", "cifar10", "--source", archive, "--checksums", sums, "--partial"
    )
    assert result.code == 0, result.err
    assert not (ws / "data" / "extra.txt").exists()
    assert not [p for p in (ws / "data").iterdir() if p.name.startswith(".")]
