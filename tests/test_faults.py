"""A read-only folder or a full disk ends in one line (exit 2, no traceback) and loses nothing.

Read-only: a read-only bind mount (root ignores permission bits). Full disk: a small tmpfs
filled to the last block. Both need root and mount rights; the tests skip where they are absent.
"""

from __future__ import annotations

import pytest

import runfixtures
from badinputs import assert_one_line, fill_disk, read_only, small_disk, tree_hashes


@pytest.fixture
def fixture_ws(tmp_path, monkeypatch):
    """The hand-made run-directory workspace, collected and analysed once."""
    ws = runfixtures.build_workspace(tmp_path / "fx")
    monkeypatch.setenv("FWBENCH_WORKSPACE", str(ws))
    return ws


@pytest.mark.parametrize(
    "command",
    [("collect",), ("env",), ("data", "prepare", "digits")],
    ids=["collect", "env", "data prepare"],
)
@pytest.mark.slow
def test_read_only_workspace_is_one_line(run_cli, fixture_ws, command):
    before = tree_hashes(fixture_ws)
    with read_only(fixture_ws):
        result = run_cli(*command)
    assert_one_line(result, 2, "cannot write: Read-only file system", str(fixture_ws), "Fix:")
    assert tree_hashes(fixture_ws) == before


def test_train_in_read_only_workspace_is_one_line(run_cli, tmp_path, monkeypatch):
    ws = tmp_path / "ws"
    (ws / "configs").mkdir(parents=True)
    (ws / "configs" / "train_config.yaml").write_text("training: {batch_size: 16}\n")
    monkeypatch.setenv("FWBENCH_WORKSPACE", str(ws))
    assert run_cli("data", "prepare", "digits").code == 0
    before = tree_hashes(ws)
    args = ("--framework", "pytorch", "--dataset", "digits", "--model", "mobilenetv2")
    with read_only(ws):
        result = run_cli("train", *args, "--subset", "40", "--epochs-override", "1")
    assert_one_line(result, 2, "Read-only file system", str(ws / "runs"))
    assert tree_hashes(ws) == before


def test_prepare_on_a_full_disk_keeps_the_previous_preparation(run_cli, tmp_path, monkeypatch):
    with small_disk(tmp_path / "disk", "8m") as ws:
        monkeypatch.setenv("FWBENCH_WORKSPACE", str(ws))
        assert run_cli("data", "prepare", "digits").code == 0  # ~5.6 MB: fits once, not twice
        before = tree_hashes(ws)
        result = run_cli("data", "prepare", "digits", "--force")
        assert_one_line(result, 2, "disk full: No space left on device", "Fix: free disk space")
        assert tree_hashes(ws) == before  # old files intact, no temp file left


@pytest.mark.parametrize(
    "command", ["collect", "analyze", "report", pytest.param("env", marks=pytest.mark.slow)]
)
@pytest.mark.slow
def test_full_disk_is_one_line_and_keeps_earlier_results(run_cli, tmp_path, monkeypatch, command):
    with small_disk(tmp_path / "disk", "4m") as disk:
        ws = runfixtures.build_workspace(disk / "fx")
        monkeypatch.setenv("FWBENCH_WORKSPACE", str(ws))
        for step in ("collect", "analyze", "report", "env")[: 1 + (command != "collect")]:
            assert run_cli(step).code == 0, step
        filler = fill_disk(disk)
        before = tree_hashes(ws)
        result = run_cli(command)
        assert_one_line(result, 2, "disk full: No space left on device")
        assert tree_hashes(ws) == before
        filler.unlink()
