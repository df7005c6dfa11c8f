"""A training run's faults leave a true state: a fatal error (a full disk included) ends the run
``failed`` with its reason; a checkpoint that cannot be read falls back to the previous one, or
restarts the run, with a line saying so; a tracking server that does not answer is given up
within seconds."""

from __future__ import annotations

import errno
import json
import os
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from badinputs import fill_disk, small_disk
from fwbench.core.errors import FwbenchError
from fwbench.core.fileio import write_json
from fwbench.core.paths import Workspace
from fwbench.record.guards import RESERVE_NAME, free_reserve, refuse_if_live, reserve_space
from fwbench.record.runs import RunDir
from fwbench.training import loop as training
from specs import digits_spec


def _spec():
    return digits_spec(epochs_override=2)


def test_a_full_disk_during_train_leaves_the_run_failed_with_its_reason(tmp_path, monkeypatch):
    with small_disk(tmp_path / "disk", "2m") as disk:
        ws = Workspace(disk / "ws")
        spec = _spec()
        rd = RunDir(ws.runs_dir / spec.run_id)
        rd.write_spec(spec)

        def disk_fills(*args):  # the disk fills while the run works, then a write fails
            fill_disk(disk)
            raise OSError(errno.ENOSPC, "No space left on device", str(rd.checkpoints))

        monkeypatch.setattr(training, "verify_run_data", disk_fills)
        with pytest.raises(OSError):
            training.train_run(rd, ws, backend=object(), show_progress=False)
        status = rd.read_status()
        assert status["state"] == "failed"
        assert status["error"] == f"No space left on device ({rd.checkpoints})"
        assert "failed: No space left on device" in rd.log_path.read_text()
        assert not (rd.path / RESERVE_NAME).exists()


def _running(rd, pid, host):
    rd.path.mkdir(parents=True, exist_ok=True)
    write_json(rd.status_path, {"state": "running", "pid": pid, "host": host})


def test_a_run_a_live_process_on_this_host_trains_is_refused_and_a_dead_ones_resumed(tmp_path):
    rd, here = RunDir(tmp_path / "run"), os.uname().nodename
    rd.write_spec(_spec())
    _running(rd, os.getppid(), here)  # pytest's parent: alive, and not this process
    with pytest.raises(FwbenchError, match=f"being trained by process {os.getppid()}"):
        training.train_run(rd, Workspace(tmp_path / "ws"), backend=object(), show_progress=False)
    assert rd.read_status()["pid"] == os.getppid()  # nothing written over the live run's state
    code = "import os; print(os.getpid())"
    gone = int(subprocess.run([sys.executable, "-c", code], capture_output=True).stdout)
    for pid, host in ((gone, here), (os.getppid(), "another-host"), (os.getpid(), here)):
        _running(rd, pid, host)
        refuse_if_live(rd)  # gone, elsewhere, or this process itself: a resume


def test_the_reserve_is_a_small_file_in_the_run_dir_and_freeing_it_twice_is_harmless(tmp_path):
    rd = RunDir(tmp_path / "run")
    rd.path.mkdir(parents=True)
    reserve = reserve_space(rd)
    assert reserve == rd.path / RESERVE_NAME and reserve.stat().st_size == 256 * 1024
    free_reserve(reserve)
    free_reserve(reserve)
    free_reserve(None)
    assert not reserve.exists()
    assert reserve_space(RunDir(tmp_path / "missing")) is None  # no room, no reserve, no error


class _Backend:
    """Checkpoints are JSON; reading a damaged one raises what a reader raises."""

    last_file = "last.json"
    best_file = "best.json"

    def __init__(self):
        self.builds = 0

    def load_last(self, path):
        return json.loads(path.read_text())["meta"]

    def build(self, spec, inputs):
        self.builds += 1


def _trainer(tmp_path, capsys):
    rd = RunDir(tmp_path / "run")
    rd.checkpoints.mkdir(parents=True)
    t = object.__new__(training._Trainer)
    t.run_dir, t.spec, t.backend, t.inputs = rd, _spec(), _Backend(), None
    t.last_path = rd.checkpoints / "last.json"
    t.previous_path = rd.checkpoints / "previous-last.json"
    return t


def _save(path, epoch):
    path.write_text(json.dumps({"meta": {"epoch": epoch, "records": [{"epoch": epoch + 1}]}}))


def test_a_truncated_last_checkpoint_falls_back_to_the_previous_one(tmp_path, capsys):
    t = _trainer(tmp_path, capsys)
    _save(t.previous_path, 0)
    _save(t.last_path, 1)
    t.last_path.write_text(t.last_path.read_text()[:-9])  # truncated
    meta = t._load_checkpoint()
    assert meta["epoch"] == 0 and t.backend.builds == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "checkpoint last.json cannot be read (JSONDecodeError" in err[0]
    assert err[0].endswith("resuming from the previous checkpoint")
    assert "resuming from the previous checkpoint" in t.run_dir.log_path.read_text()


def test_no_readable_checkpoint_restarts_the_run_with_a_line(tmp_path, capsys):
    t = _trainer(tmp_path, capsys)
    t.last_path.write_bytes(b"PK\x03\x04 not a checkpoint")
    assert t._load_checkpoint() is None
    assert t.backend.builds == 1  # the model is built afresh: the run restarts from epoch 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].endswith("resuming from epoch 1 (restart)")


SINK = textwrap.dedent(
    """
    import sys, time
    from fwbench.record.runs import RunDir
    from fwbench.training.sinks import Sinks
    from fwbench.training.tracking import MlflowSink
    import mlflow  # imported before the clock starts
    warnings = []
    sinks = Sinks([MlflowSink(RunDir(sys.argv[1]), sys.argv[2])], warn=warnings.append)
    start = time.monotonic()
    sinks.start(None, 3, 0)
    print(round(time.monotonic() - start, 1), warnings)
    """
)


@pytest.mark.slow
def test_a_tracking_server_that_does_not_answer_is_given_up_within_10_seconds(tmp_path):
    pytest.importorskip("mlflow")
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)  # accepts connections, never answers
    port = server.getsockname()[1]
    try:
        cmd = [sys.executable, "-c", SINK, str(tmp_path), f"http://127.0.0.1:{port}"]
        begin = time.monotonic()
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    finally:
        server.close()
    assert out.returncode == 0, out.stderr
    seconds, _, warnings = out.stdout.strip().partition(" ")
    assert float(seconds) <= 10, (out.stdout, time.monotonic() - begin)
    assert "MLflow is off for this run" in warnings
