"""Nothing wrong is accepted: each bad input ends in one line (what, which file, fix), exit 2,
no traceback, and leaves every file written before unchanged."""

from __future__ import annotations

import dataclasses
import json
import re

import numpy as np
import pytest
import yaml

import runfixtures
from badinputs import assert_one_line, rewrite_pickle, tree_hashes
from fakedata import checksums_for, write_checksums, write_cifar10, write_tiny_imagenet
from fwbench.registry import datasets as catalog


@pytest.fixture
def cifar(tmp_path):
    """A small CIFAR-10 folder in the official format and its checksums file."""
    folder = write_cifar10(tmp_path / "src")
    return folder


def _prepare_cifar(run_cli, folder, tmp_path):
    sums = write_checksums(tmp_path / "sums.json", checksums_for(folder))
    return run_cli(
        "data", "prepare", "cifar10", "--source", folder, "--checksums", sums, "--partial"
    )


def _labels(d, n):
    d[b"labels"] = d[b"labels"][:n] if n >= 0 else d[b"labels"] + [0] * -n
    return d


CIFAR_BATCH_DEFECTS = {
    "labels shorter than rows": (lambda d: _labels(d, 5), "5 labels for 20 images"),
    "labels longer than rows": (lambda d: _labels(d, -3), "23 labels for 20 images"),
    "rows of the wrong length": (
        lambda d: d | {b"data": d[b"data"][:, :3000]},
        "shape (20, 3000), expected (N, 3072)",
    ),
    "float pixels": (
        lambda d: d | {b"data": d[b"data"].astype(np.float64) * 1.5},
        "pixels are float64, expected uint8",
    ),
    "no labels key": (lambda d: {k: v for k, v in d.items() if k != b"labels"}, "no 'labels'"),
    "no data key": (lambda d: {k: v for k, v in d.items() if k != b"data"}, "no 'data' key"),
    "not a dict": (lambda d: [d[b"data"], d[b"labels"]], "is a list, not a dict"),
    "non-integer labels": (
        lambda d: d | {b"labels": [0.5] * len(d[b"labels"])},
        "not a list of integers",
    ),
}


@pytest.mark.parametrize("defect", list(CIFAR_BATCH_DEFECTS))
def test_malformed_cifar_batch_is_refused(run_cli, ws, tmp_path, cifar, defect):
    change, message = CIFAR_BATCH_DEFECTS[defect]
    rewrite_pickle(cifar / "data_batch_2", change)
    before = tree_hashes(ws)
    result = _prepare_cifar(run_cli, cifar, tmp_path)
    assert_one_line(result, 2, message, "data_batch_2", "Fix:")
    assert tree_hashes(ws) == before
    assert not (ws / "data" / "prepared" / "cifar10").exists()


def test_cifar_meta_with_wrong_class_count_is_refused(run_cli, ws, tmp_path, cifar):
    rewrite_pickle(cifar / "batches.meta", lambda d: d | {b"label_names": d[b"label_names"][:9]})
    result = _prepare_cifar(run_cli, cifar, tmp_path)
    assert_one_line(result, 2, "9 class names", "expected 10", "batches.meta")


def test_cifar_folder_missing_a_batch_names_it(run_cli, ws, tmp_path, cifar):
    sums = write_checksums(tmp_path / "sums.json", checksums_for(cifar))
    (cifar / "data_batch_3").unlink()
    result = run_cli("data", "prepare", "cifar10", "--source", cifar, "--checksums", sums)
    assert_one_line(result, 2, "data_batch_3 is missing")


def test_empty_test_set_is_refused(run_cli, ws, tmp_path, cifar):
    rewrite_pickle(
        cifar / "test_batch",
        lambda d: d | {b"data": d[b"data"][:0], b"labels": [], b"filenames": []},
    )
    result = _prepare_cifar(run_cli, cifar, tmp_path)
    assert_one_line(result, 2, "100 training / 0 test images", "cannot be empty")


def test_oversized_set_is_called_oversized_not_incomplete(
    run_cli, ws, tmp_path, cifar, monkeypatch
):
    # the fake set has 100 pool images; pretend the official one has 90
    small = dataclasses.replace(catalog.CIFAR10, train_size=81, val_size=9)
    monkeypatch.setitem(catalog.DATASETS, "cifar10", small)
    line = assert_one_line(_prepare_cifar(run_cli, cifar, tmp_path), 2, "oversized cifar10")
    assert "incomplete" not in line


def _tiny_npy(folder, **arrays):
    rng = np.random.default_rng(0)
    data = {
        "train_images": rng.integers(0, 256, (400, 64, 64, 3), dtype=np.uint8),
        "train_labels": np.repeat(np.arange(200), 2),
        "test_images": rng.integers(0, 256, (200, 64, 64, 3), dtype=np.uint8),
        "test_labels": np.arange(200),
    } | arrays
    folder.mkdir(parents=True, exist_ok=True)
    for name, arr in data.items():
        np.save(folder / f"tiny_imagenet_{name}.npy", arr)
    return folder


@pytest.mark.parametrize(
    ("arrays", "needles"),
    [
        ({"train_labels": np.repeat(np.arange(200), 2)[:-7]}, ["393 labels for 400 images"]),
        (
            {"test_images": np.zeros((0, 64, 64, 3), np.uint8), "test_labels": np.zeros(0, int)},
            ["tiny_imagenet_test_images.npy", "N > 0"],
        ),
        ({"test_images": np.full((200, 64, 64, 3), 300.0)}, ["dtype float64", "uint8"]),
        ({"train_labels": np.repeat(np.arange(200), 2) + 0.5}, ["not a list of integers"]),
    ],
    ids=["label-image length mismatch", "empty array", "float pixels", "float labels"],
)
def test_malformed_tiny_imagenet_npy_is_refused(run_cli, ws, tmp_path, arrays, needles):
    src = _tiny_npy(tmp_path / "npy", **arrays)
    result = run_cli("data", "prepare", "tiny-imagenet", "--source", src, "--partial")
    assert_one_line(result, 2, *needles)
    assert not (ws / "data" / "prepared").exists()


def test_tiny_imagenet_folder_without_wnids_names_the_file(run_cli, ws, tmp_path):
    folder = write_tiny_imagenet(tmp_path / "src", per_class=1, val_per_class=1)
    (folder / "wnids.txt").unlink()
    result = run_cli("data", "prepare", "tiny-imagenet", "--source", folder, "--partial")
    assert_one_line(result, 2, "wnids.txt is missing")


# --- configuration ------------------------------------------------------------------------------

CONFIG_DEFECTS = {
    "bool for an int": ("train", {"training": {"batch_size": True}}, "got True"),
    "string for a number": ("train", {"lr": {"base_lr": "0.1"}}, "lr.base_lr"),
    "string for an int": ("train", {"training": {"batch_size": "8"}}, "got '8'"),
    "stages is a number": ("matrix", {"stages": 5}, "'stages': must be a mapping"),
    "duplicate seeds": ("matrix", {"seeds": [1, 1]}, "seed 1 is listed twice"),
    "no seeds": ("matrix", {"seeds": []}, "at least one seed"),
    "no models": ("matrix", {"models": []}, "at least one model"),
    "negative seed": ("matrix", {"seeds": [-1]}, "allowed range 0..4294967295"),
    "seed beyond 2**32-1": ("matrix", {"seeds": [2**32]}, "allowed range 0..4294967295"),
    "bool seed": ("matrix", {"seeds": [True]}, "stages.x.seeds"),
}


@pytest.mark.parametrize("defect", list(CONFIG_DEFECTS))
def test_config_is_parsed_strictly(run_cli, ws, defect):
    kind, change, message = CONFIG_DEFECTS[defect]
    stage = {
        "datasets": ["digits"],
        "models": ["mobilenetv2"],
        "precisions": ["fp32"],
        "seeds": [1],
        "frameworks": ["pytorch"],
    }
    if kind == "matrix":
        data = change if "stages" in change else {"stages": {"x": stage | change}}
        path = ws / "configs" / "m.yaml"
        path.write_text(yaml.safe_dump(data))
        result = run_cli("run", "--stage", "x", "--matrix", path, "--dry-run")
    else:
        path = ws / "configs" / "t.yaml"
        path.write_text(yaml.safe_dump(change))
        result = run_cli("config", "show", "--config", path)
    assert_one_line(result, 2, message, str(path))


def test_yaml_floats_in_scientific_notation_are_numbers(run_cli, ws):
    path = ws / "configs" / "t.yaml"
    path.write_text("optimizer:\n  weight_decay: 5e-4\nlr:\n  base_lr: 1e-1\n")
    result = run_cli("config", "show", "--config", path)
    assert result.code == 0, result.err
    assert "weight_decay: 0.0005" in result.out and "base_lr: 0.1" in result.out


def test_config_that_is_not_utf8_is_refused(run_cli, ws):
    path = ws / "configs" / "t.yaml"
    path.write_bytes(b"training:\n  batch_size: 8 # caf\xe9\n")
    assert_one_line(run_cli("config", "show", "--config", path), 2, "not UTF-8", "t.yaml")


@pytest.mark.parametrize("seed", ["-1", str(2**32)])
def test_train_seed_outside_range_is_refused_before_anything_is_written(run_cli, ws, seed):
    args = ("train", "--framework", "pytorch", "--dataset", "digits", "--model", "mobilenetv2")
    result = run_cli(*args, "--seed", seed)
    assert_one_line(result, 2, f"seed {seed} is outside the allowed range 0..4294967295")
    assert not (ws / "runs").exists()


# --- train preconditions and the manifest ---------------------------------------------------------

TRAIN = ("train", "--framework", "pytorch", "--dataset", "digits", "--model", "mobilenetv2")


def test_train_on_unprepared_data_leaves_no_run_directory(run_cli, ws):
    result = run_cli(*TRAIN, "--epochs-override", "1")
    assert_one_line(result, 2, "dataset 'digits' is not prepared", "fwbench data prepare digits")
    assert not (ws / "runs").exists()


@pytest.fixture
def digits_ws(run_cli, ws):
    (ws / "configs" / "train_config.yaml").write_text(
        "training: {batch_size: 16, num_workers: 0, threads: 1}\n"
    )
    result = run_cli("data", "prepare", "digits")
    assert result.code == 0, result.err
    return ws


@pytest.mark.slow
def test_train_subset_smaller_than_a_batch_shrinks_the_batch_with_a_notice(run_cli, digits_ws):
    result = run_cli(*TRAIN, "--subset", "10", "--epochs-override", "1", "--no-progress")
    assert result.code == 0, result.err
    assert "note: --subset 10 is smaller than one batch (16); training with batch size 10" in (
        result.err
    )
    (run,) = digits_ws.glob("runs/*/spec.json")
    assert json.loads(run.read_text())["train_config"]["training"]["batch_size"] == 10


def test_prepared_files_that_do_not_match_the_manifest_are_refused(run_cli, digits_ws):
    # an interrupted `prepare --force`: new indices beside the old images (same size)
    path = digits_ws / "data" / "splits" / "digits" / "val_indices.npy"
    idx = np.load(path)
    np.save(path, idx[::-1].copy())
    result = run_cli(*TRAIN, "--subset", "100", "--epochs-override", "1", "--no-progress")
    assert_one_line(result, 2, "does not match the SHA-256 in its manifest", "val_indices.npy")
    assert not list(digits_ws.glob("runs/*")), "a failed precondition left a run directory"


def test_interrupted_prepare_force_keeps_the_old_preparation(run_cli, digits_ws, monkeypatch):
    from fwbench.core.fileio import StagedWrites

    before = tree_hashes(digits_ws)

    def interrupted(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(StagedWrites, "commit", interrupted)
    result = run_cli("data", "prepare", "digits", "--force")
    assert_one_line(result, 130, "interrupted:", "running the same command again continues")
    assert tree_hashes(digits_ws) == before  # no new file beside old ones, no temp file left


# --- corrupt run directories: named by status and collect, never silently dropped ----------------


@pytest.fixture
def damaged(tmp_path, monkeypatch):
    """The hand-made fixture workspace with three done runs damaged in three ways."""
    ws = runfixtures.build_workspace(tmp_path / "fx")
    monkeypatch.setenv("FWBENCH_WORKSPACE", str(ws))
    runs = ws / "runs"
    ids = {
        "test.json": "digits-mobilenetv2-fp32-s1-pytorch",
        "epochs.jsonl": "digits-mobilenetv2-fp32-s2-keras",
        "spec.json": "digits-mobilenetv2-amp-s3-pytorch",
    }
    ids = {name: runfixtures.find_run(runs, readable).run_id for name, readable in ids.items()}
    for name, run_id in ids.items():
        path = runs / run_id / name
        path.write_bytes(path.read_bytes()[:-30])  # truncated: the last 30 bytes are gone
    return ws, ids


def test_status_names_corrupt_runs(run_cli, damaged):
    ws, ids = damaged
    result = run_cli("status", "--stage", runfixtures.STAGE)
    assert result.code == 0, result.err
    for name, run_id in ids.items():
        assert f"corrupt {run_id}: {name}" in result.out
    header, row = result.out.splitlines()[:2]
    assert dict(zip(header.split(), row.split(), strict=True))["corrupt"] == "3"


@pytest.mark.slow
def test_collect_and_analysis_count_corrupt_runs(run_cli, damaged):
    ws, ids = damaged
    assert run_cli("collect", "--stage", runfixtures.STAGE).code == 0
    runs = __import__("pandas").read_csv(ws / "results" / "runs.csv").set_index("run_id")
    assert len(runs) == 24  # every expected run is a row
    for name, run_id in ids.items():
        assert runs.loc[run_id, "state"] == "corrupt"
        assert f"corrupt: {name}" in runs.loc[run_id, "note"]
        assert "truncated" in runs.loc[run_id, "note"]
    assert run_cli("analyze").code == 0
    coverage = __import__("pandas").read_csv(ws / "analysis" / "coverage.csv")
    assert int(coverage.set_index("stage").loc[runfixtures.STAGE, "corrupt"]) == 3
    assert run_cli("report").code == 0
    report = (ws / "report" / "report.md").read_text(encoding="utf-8")
    for name, run_id in ids.items():  # named among the runs left out, with the reason
        assert re.search(rf"{run_id}.*corrupt.*{re.escape(name)}", report), run_id


def test_train_of_a_run_another_process_holds_is_refused_and_says_who(run_cli, digits_ws):
    import os

    from fwbench.config.train import load_train_config
    from fwbench.record.lock import RunLock
    from fwbench.record.runs import make_spec

    cfg = load_train_config(digits_ws / "configs" / "train_config.yaml")
    spec = make_spec(cfg, dataset="digits", model="mobilenetv2", precision="fp32", seed=42,
                     framework="pytorch", epochs_override=1, subset=100)  # fmt: skip
    run_dir = digits_ws / "runs" / spec.run_id  # the directory its settings give it
    with RunLock(run_dir):
        result = run_cli(*TRAIN, "--subset", "100", "--epochs-override", "1")
    assert_one_line(result, 2, f"run is busy: trained by pid {os.getpid()}", str(run_dir))
    assert not (run_dir / "spec.json").exists()


def test_read_only_workspace_refuses_run_in_one_line(run_cli, digits_ws):
    from badinputs import read_only

    (digits_ws / "configs" / "m.yaml").write_text(yaml.safe_dump(MATRIX))
    before = tree_hashes(digits_ws)
    with read_only(digits_ws):
        result = run_cli("run", "--stage", "x", "--matrix", digits_ws / "configs" / "m.yaml")
    assert result.out.startswith("x: 1 runs")
    assert_one_line(result, 2, "cannot write: Read-only file system", str(digits_ws / "runs"))
    assert tree_hashes(digits_ws) == before


MATRIX = {
    "stages": {
        "x": {
            "datasets": ["digits"],
            "models": ["mobilenetv2"],
            "precisions": ["fp32"],
            "seeds": [1],
            "frameworks": ["pytorch"],
        }
    }
}


def test_tiny_imagenet_annotations_that_are_not_utf8_are_refused(run_cli, ws, tmp_path):
    folder = write_tiny_imagenet(tmp_path / "src", per_class=1, val_per_class=1)
    ann = folder / "val" / "val_annotations.txt"
    ann.write_bytes(ann.read_bytes() + b"\xff\xfe")
    result = run_cli("data", "prepare", "tiny-imagenet", "--source", folder, "--partial")
    assert_one_line(result, 2, "not UTF-8", "val_annotations.txt")


@pytest.fixture(scope="module")
def collect_ws(tmp_path_factory):
    return runfixtures.build_workspace(tmp_path_factory.mktemp("ctrlc") / "fx")


def _collect(ws, **env):
    """Start ``python -m fwbench.cli collect`` on ``ws`` (the real entry point)."""
    import os
    import subprocess
    import sys

    env = os.environ | {"FWBENCH_WORKSPACE": str(ws), "COLUMNS": "200"} | env
    cmd = [sys.executable, "-m", "fwbench.cli", "collect"]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _assert_interrupted(proc, err, code):
    assert proc.returncode == code, err  # an exit code, never death by the signal (-2, -15)
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("interrupted"), err


@pytest.mark.slow
@pytest.mark.parametrize("point", ["import", "command", "write", "finish", "exit"])
@pytest.mark.parametrize(("signame", "code"), [("SIGINT", 130), ("SIGTERM", 143)])
def test_a_signal_at_every_point_of_a_command_is_one_line_and_128_plus_signal(
    collect_ws, point, signame, code
):
    """The command signals itself when it reaches ``point`` (while importing, starting the
    command, inside an atomic write, after its outcome is known, in the last exit hook)."""
    proc = _collect(collect_ws, FWBENCH_TEST_SIGNAL=f"{point}:{signame}")
    _, err = proc.communicate(timeout=120)
    _assert_interrupted(proc, err, code)
    assert not list(collect_ws.rglob("*.tmp")), "a temp file was left behind"


@pytest.mark.parametrize("delay", [0.0, 0.05, 0.15, 0.3, 0.5, 0.8])
def test_ctrl_c_at_any_moment_is_one_line_and_exit_130(collect_ws, tmp_path, delay):
    """Ctrl-C ``delay`` seconds after fwbench's first line ran (imports, work, writing, exit):
    exit 130 with one line, or the command had already ended cleanly before the signal."""
    import signal
    import time

    points = tmp_path / "points"
    proc = _collect(collect_ws, FWBENCH_TEST_POINTS=str(points))
    deadline = time.monotonic() + 60
    while not points.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)  # the handler is installed before the first point is written
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    if proc.returncode == 0:  # ended before the signal: whole output, nothing on stderr
        assert err.strip() == "" and "exit" in points.read_text().split(), err
        return
    _assert_interrupted(proc, err, 130)


def test_an_interrupted_run_is_resumed_without_retry_failed(tmp_path):
    from fwbench.core.paths import Workspace
    from fwbench.record.runs import RunDir
    from fwbench.study.matrix import plan, to_launch

    ws = runfixtures.build_workspace(tmp_path / "fx")
    run_id = runfixtures.find_run(ws / "runs", "digits-mobilenetv2-fp32-s1-pytorch").run_id
    RunDir(ws / "runs" / run_id).set_status("interrupted")  # what Ctrl-C in `fwbench train` leaves
    runs = plan(Workspace(ws), runfixtures.STAGE)
    assert {r.run_id: r.state for r in runs}[run_id] == "interrupted"
    assert run_id in {r.run_id for r in to_launch(runs, retry_failed=False)}


@pytest.mark.parametrize(
    "args",
    [
        ["train", "--epochs", "0"],
        ["train", "--subset", "-5"],
        ["train", "--subset", "0"],
        ["run", "--stage", "stage1", "--parallel", "0"],
        ["run", "--stage", "stage1", "--parallel", "-1"],
        ["plan", "--sd", "-1"],
        ["train", "--seed", "1e20"],
        ["train", "--batch-size", "abc"],
        ["status", "--bogus"],
        ["nosuch"],
        ["collect", "extra-argument"],
    ],
    ids=" ".join,
)
def test_usage_errors_are_one_line_and_exit_2(run_cli, ws, args):
    before = tree_hashes(ws)
    result = run_cli(*args)
    assert_one_line(result, 2, "Fix: see `fwbench")
    assert "Usage:" not in result.err + result.out
    assert tree_hashes(ws) == before and not (ws / "runs").exists()


@pytest.mark.slow
def test_parity_error_comes_before_any_framework_log_line(tmp_path):
    """The dataset is checked before TensorFlow loads, so its log lines never precede the error."""
    import os
    import subprocess
    import sys

    env = os.environ | {"FWBENCH_WORKSPACE": str(tmp_path), "COLUMNS": "200"}
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    cmd = [sys.executable, "-m", "fwbench.cli", "parity", "pixels", "--dataset", "nosuch"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("error:") and "nosuch" in lines[0]


@pytest.mark.parametrize(
    ("field", "value", "needle"),
    [
        ("stats", None, "manifest field 'stats' is null, not a table"),
        ("sizes", [1, 2], "manifest field 'sizes' is [1, 2], not a table"),
        ("file_sizes", {"val_indices.npy": "big"}, "file_sizes['val_indices.npy'] is \"big\""),
    ],
)
def test_a_manifest_with_wrong_types_is_one_line(run_cli, digits_ws, field, value, needle):
    path = digits_ws / "data" / "splits" / "digits" / "manifest.json"
    manifest = json.loads(path.read_text())
    path.write_text(json.dumps(manifest | {field: value}))
    result = run_cli(*TRAIN, "--subset", "100", "--epochs-override", "1", "--no-progress")
    assert_one_line(result, 2, needle, "manifest.json", "Fix:")
    assert not (digits_ws / "runs").exists()


@pytest.mark.slow
def test_sigterm_during_train_leaves_the_run_interrupted_with_one_line(run_cli, digits_ws):
    """SIGTERM like Ctrl-C: the run is ``interrupted`` (resumable), one line, exit 143."""
    import os
    import subprocess
    import sys

    env = os.environ | {"FWBENCH_WORKSPACE": str(digits_ws), "FWBENCH_TEST_SIGNAL": "epoch:SIGTERM"}
    args = [*TRAIN, "--subset", "40", "--epochs-override", "2", "--no-progress"]
    proc = subprocess.run(
        [sys.executable, "-m", "fwbench.cli", *args], env=env, capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip
    assert proc.returncode == 143, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith(("error", "interrupted"))]
    assert len(lines) == 1 and "left interrupted after 1 of 2 epochs" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr
    (status,) = digits_ws.glob("runs/*/status.json")
    assert json.loads(status.read_text())["state"] == "interrupted"
