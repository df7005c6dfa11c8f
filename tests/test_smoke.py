"""``fwbench smoke``: the rows' checks and numbers, the stage estimate, and the real command."""

from __future__ import annotations

import json
import math

import pytest

from fwbench.config.train import load_train_config
from fwbench.core.paths import Workspace
from fwbench.data.prepare import prepare
from fwbench.record.runs import RunDir, make_spec
from fwbench.study.smoke import judge, row_key, schedule_seconds, slots_for, smoke_spec
from matrixfixtures import fwbench


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    ws = Workspace(tmp_path_factory.mktemp("ws"))
    prepare(ws, "digits")  # 1,257 train, 180 val, 360 test
    return ws


def spec(seed=42, **training):
    cfg = load_train_config()
    cfg = cfg.model_copy(update={"training": cfg.training.model_copy(update=training)})
    return make_spec(cfg, dataset="digits", model="mobilenetv2", precision="fp32", seed=seed,
                     framework="pytorch", epochs_override=10)  # fmt: skip


def fake_smoke(tmp_path, s, epochs, **status) -> RunDir:
    rd = RunDir(tmp_path / "smoke")
    rd.write_spec(s)
    rd.set_status(status.pop("state", "done"), **status)
    rd.epochs_path.write_text("".join(json.dumps(e) + "\n" for e in epochs))
    return rd


def epoch(n, loss, val=2.0, seconds=10.0, ips=100.0, wait=0.5):
    return {"epoch": n, "train_loss": loss, "val_loss": val, "epoch_time_seconds": seconds,
            "images_per_second": ips, "data_time_seconds": wait}  # fmt: skip


def test_seeds_share_a_row_and_the_smoke_is_two_short_epochs_of_the_real_spec(ws):
    a, b = spec(42, batch_size=64), spec(43, batch_size=64)
    assert row_key(a) == row_key(b) and row_key(a) != row_key(spec(42, batch_size=32))
    short = smoke_spec(ws, a, steps=24)
    assert (short.epochs, short.subset, short.eval_subset) == (2, 12 * 64, 360)
    assert short.train_config.training == a.train_config.training and short.model == a.model
    assert short.train_config.lr.warmup_epochs == pytest.approx(5.0 * 2 / 10)  # 5 of 10 epochs
    assert smoke_spec(ws, a, steps=1000).subset == 1257  # never more than the training split


def test_a_row_that_learns_passes_and_its_full_run_is_estimated_from_the_second_epoch(ws, tmp_path):
    full = spec(batch_size=64)
    short = smoke_spec(ws, full, steps=24)  # 12 steps x 64 = 768 images per epoch
    rd = fake_smoke(tmp_path, short, [epoch(1, 2.3, seconds=30.0), epoch(2, 1.9)],
                    peak_memory_bytes=2**30, peak_memory_source="peak RSS (host)")  # fmt: skip
    row = judge(ws, full, short, rd, runs=3, wall=45.0)
    assert row.ok and row.problems == () and row.runs == 3
    assert row.images_per_second == 100.0 and row.compile_seconds == pytest.approx(20.0)
    assert row.data_wait == pytest.approx(0.5 / 7.68)  # 768 images at 100/s = 7.68 s training
    # full run: 10 epochs x 19 steps x 64 images at 100/s, eval at (10 - 7.68) s / 180 val
    # images for 10 x 180 val + 360 test images, plus 20 s compilation
    per_image = (10.0 - 7.68) / 180
    expected = 10 * 19 * 64 / 100.0 + (10 * 180 + 360) * per_image + 20.0
    assert row.full_seconds == pytest.approx(expected)


@pytest.mark.parametrize(
    "epochs, status, problem",
    [
        ([epoch(1, 2.3), epoch(2, 2.4)], {}, "training loss not falling (2.3 -> 2.4)"),
        ([epoch(1, 2.3), epoch(2, math.nan)], {}, "non-finite training loss"),
        ([epoch(1, 2.3), epoch(2, 1.9, val=math.inf)], {}, "non-finite validation loss"),
        (
            [epoch(1, 2.3)],
            {"state": "diverged", "error": "non-finite training loss (nan) at epoch 2, step 13"},
            "diverged: non-finite training loss",
        ),
    ],
)
def test_a_row_that_would_fail_says_why(ws, tmp_path, epochs, status, problem):
    full = spec(batch_size=64)
    short = smoke_spec(ws, full, steps=24)
    row = judge(ws, full, short, fake_smoke(tmp_path, short, epochs, **status), 1, 1.0)
    assert not row.ok and any(p.startswith(problem) for p in row.problems), row.problems


def test_the_stage_estimate_schedules_every_run_on_the_executor_slots():
    assert slots_for(parallel=4, gpus=2) == 2 and slots_for(4, 0) == 4 and slots_for(1, 8) == 1
    assert schedule_seconds([10, 10, 10, 10], 2) == 20
    assert schedule_seconds([30, 10, 10, 10], 2) == 30  # longest first
    assert schedule_seconds([5, 5, 5], 1) == 15


@pytest.mark.slow
def test_smoke_command_trains_each_row_and_exits_1_when_an_arm_would_fail(tmp_path):
    ws = tmp_path / "ws"
    assert fwbench(ws, "data", "prepare", "digits").returncode == 0
    args = ["smoke", "--stage", "demo", "--only", "framework=pytorch", "--steps", "24"]
    p = fwbench(ws, *args, "--gpus", "0", "--parallel", "2")
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert "pytorch digits mobilenetv2 fp32 matched" in p.stdout and " ok " in p.stdout, p.stdout
    assert "stage demo: 3 runs, estimated wall time" in p.stdout and "--parallel 2" in p.stdout
    assert not (ws / "runs").exists()  # the smoke trains in a scratch folder, not the stage's
    p = fwbench(ws, *args, "--set", "lr.base_lr=1.0e+9")
    assert p.returncode == 1, p.stdout[-3000:]
    assert "FAIL" in p.stdout and "1 of 1 rows would fail" in p.stdout
