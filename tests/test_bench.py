"""``fwbench bench``: warm-up exclusion, turn-taking, summaries, CSV columns, the real subprocess.

Timings are driven by an injected clock that only the fake steps and fetches advance, so every
number below is exact; the end-to-end test checks columns and counts, never speed.
"""

from __future__ import annotations

import pandas as pd
import pytest

from fwbench.bench.measure import (
    COLUMNS,
    BenchJob,
    Repeat,
    Runner,
    SpeedSettings,
    job_rows,
    measure_modes,
    summarise,
)
from fwbench.bench.run import plan_jobs, run_bench
from fwbench.core.errors import FwbenchError
from fwbench.core.paths import Workspace
from fwbench.core.threads import default_workers
from fwbench.data.prepare import prepare
from fwbench.recipe.timing import Stopwatch


class FakeTime:
    """A clock that moves only when a fake step or fetch says so."""

    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def counting_runner(clock: FakeTime, log: list, name: str, step_s: float, fetch_s: float = 0.0):
    """A runner whose fetches and steps advance ``clock`` and append ``name`` to ``log``."""

    def batches():
        while True:
            clock.now += fetch_s
            yield ("x", [0] * 8)  # (images, labels) of 8 images

    def step(batch) -> int:
        log.append(name)
        clock.now += step_s
        return len(batch[1])

    return Runner(batches(), step)


def test_warmup_steps_are_run_but_never_timed():
    clock, log = FakeTime(), []
    runners = {"bare": counting_runner(clock, log, "bare", step_s=1.0, fetch_s=0.25)}
    out = measure_modes(runners, warmup=3, steps=5, repeats=4, clock=clock)
    assert len(log) == 4 * (3 + 5)  # every warm-up step ran ...
    for rep in out["bare"]:  # ... but each window holds only its 5 timed steps
        assert rep == Repeat(seconds=5 * 1.25, images=5 * 8, steps=5, data_seconds=5 * 0.25,
                             warmup_seconds=3 * 1.25, warmup_steps=3)  # fmt: skip


def test_modes_take_turns_forward_then_backward():
    clock, log = FakeTime(), []
    runners = {m: counting_runner(clock, log, m, 1.0) for m in ("bare", "harness", "pipeline")}
    measure_modes(runners, warmup=1, steps=2, repeats=3, clock=clock)
    windows = [log[i] for i in range(0, len(log), 3)]  # each window: 1 warm-up + 2 timed steps
    assert windows == ["bare", "harness", "pipeline", "pipeline", "harness", "bare"] + [
        "bare",
        "harness",
        "pipeline",
    ]


def test_a_restarting_runner_gets_a_fresh_stream_before_each_warm_up():
    clock, log, starts = FakeTime(), [], []

    def restart():
        starts.append(len(log))  # steps run so far when this stream starts
        return counting_runner(clock, log, "pipeline", 1.0).batches

    runner = counting_runner(clock, log, "pipeline", 1.0)
    runner.restart = restart
    measure_modes({"pipeline": runner}, warmup=2, steps=3, repeats=3, clock=clock)
    assert starts == [0, 5, 10]


def test_summary_is_median_and_extremes_over_repeats():
    reps = [Repeat(2.0, 100, 10, 0.5), Repeat(1.0, 100, 10, 0.0), Repeat(4.0, 100, 10, 1.0)]
    s = summarise(reps)
    assert s["samples_per_sec"] == pytest.approx(50.0)
    assert (s["samples_per_sec_min"], s["samples_per_sec_max"]) == (25.0, 100.0)
    assert s["step_ms"] == pytest.approx(200.0)
    assert (s["step_ms_min"], s["step_ms_max"], s["step_ms_spread"]) == (100.0, 400.0, 300.0)
    assert s["data_ms"] == pytest.approx(50.0)


def _job(**kw) -> BenchJob:
    base = dict(
        framework="pytorch", model="mobilenetv2", precision="fp32", batch_size=8, input_size=32,
        num_classes=10, dataset="synthetic", modes=("bare", "harness", "pipeline"), warmup=1,
        steps=2, repeats=3, settings=SpeedSettings(threads=2),
    )  # fmt: skip
    return BenchJob(**(base | kw))


def test_rows_carry_every_column_and_pair_each_repeat_with_its_reference():
    # harness is exactly 0.9x bare in repeats 1 and 3 and 0.5x in repeat 2: paired median 0.9
    results = {
        "bare": [Repeat(1.0, 90, 2, 0), Repeat(1.0, 90, 2, 0), Repeat(2.0, 90, 2, 0)],
        "harness": [Repeat(1.0, 81, 2, 0), Repeat(2.0, 90, 2, 0), Repeat(2.0, 81, 2, 0)],
        "pipeline": [Repeat(0.1, 90, 2, 0.1)] * 3,
    }
    rows = job_rows(_job(), results, {"device": "cpu", "tf32": False})
    assert [r["mode"] for r in rows] == ["bare", "harness", "pipeline"]
    assert all(tuple(r) == COLUMNS for r in rows)
    bare, harness, pipeline = rows
    assert (bare["ref_mode"], bare["ratio_to_ref"]) == (None, None)
    assert harness["ref_mode"] == "bare" and harness["ratio_to_ref"] == pytest.approx(0.9)
    assert pipeline["ref_mode"] == "harness"
    assert harness["warmup"] == 1 and harness["steps"] == 2 and harness["tf32"] is False


def test_job_round_trips_through_json():
    job = _job(settings=SpeedSettings(tf32=True, threads=3, num_workers=2))
    assert BenchJob.from_json(job.to_json()) == job


def test_default_workers_load_in_the_main_process_on_small_machines():
    assert default_workers(2, 8) == 0
    assert default_workers(16, 8) == 8
    assert default_workers(8, 8) == 4


def test_stopwatch_counts_data_wait_inside_the_step_and_the_loop_in_images_per_second():
    clock = FakeTime()
    sw = Stopwatch(clock)

    def batches():
        while True:
            clock.now += 0.5  # blocked in next()
            yield 1

    it = batches()
    for _ in range(2):
        sw.fetch(it)
        clock.now += 1.5  # the step
        assert sw.step_done(10) == pytest.approx(2.0)
        clock.now += 1.0  # bookkeeping between steps: in the loop's wall time, not a step's
    assert sw.data_seconds == pytest.approx(1.0)
    assert sw.seconds == pytest.approx(5.0)
    assert sw.images_per_second == pytest.approx(20 / 5.0)


def test_run_bench_appends_rows_to_the_csv(tmp_path):
    ws = Workspace(tmp_path)
    results = {"bare": [Repeat(1.0, 8, 1, 0.0)], "harness": [Repeat(1.0, 8, 1, 0.0)]}
    fake = lambda job: job_rows(job, results, {"device": "cpu"})  # noqa: E731
    run_bench(ws, [_job()], runner=fake)
    run_bench(ws, [_job(), _job(precision="amp")], runner=fake)
    table = pd.read_csv(tmp_path / "results" / "bench.csv")
    assert tuple(table.columns) == COLUMNS
    assert len(table) == 2 * 3 and list(table["precision"]).count("amp") == 2


def test_pipeline_modes_need_a_prepared_dataset_of_the_same_shape(tmp_path):
    ws = Workspace(tmp_path)
    common = dict(
        frameworks=["pytorch"], models=["mobilenetv2"], precisions=["fp32"], batch_sizes=[8],
        dataset="synthetic", settings=SpeedSettings(),
    )  # fmt: skip
    with pytest.raises(FwbenchError, match="not prepared"):
        plan_jobs(ws, modes=["pipeline"], **common)
    jobs = plan_jobs(ws, modes=["harness", "bare"], input_size=64, **common)  # no dataset needed
    assert jobs[0].modes == ("bare", "harness") and jobs[0].input_size == 64
    prepare(ws, "synthetic")
    with pytest.raises(FwbenchError, match="pipeline modes read 'synthetic'"):
        plan_jobs(ws, modes=["harness+pipeline"], input_size=64, **common)
    with pytest.raises(FwbenchError, match="unknown mode"):
        plan_jobs(ws, modes=["fast"], **common)


@pytest.mark.slow
def test_bench_command_measures_the_pytorch_arm_in_its_own_process(tmp_path, run_cli):
    prepare(Workspace(tmp_path), "synthetic")
    args = ["bench", "-w", tmp_path, "--frameworks", "pytorch", "--batch-sizes", "4"]
    args += ["--dataset", "synthetic", "--steps", "2", "--warmup", "1", "--repeats", "2"]
    args += ["--threads", "1", "--num-workers", "0"]
    result = run_cli(*args)
    assert result.code == 0, result.err
    table = pd.read_csv(tmp_path / "results" / "bench.csv")
    assert tuple(table.columns) == COLUMNS
    assert list(table["mode"]) == ["bare", "harness", "harness+pipeline", "pipeline"]
    assert set(table["framework"]) == {"pytorch"} and set(table["batch_size"]) == {4}
    assert (table["steps"] == 2).all() and (table["warmup"] == 1).all()
    assert (table["samples_per_sec"] > 0).all()
    assert table["param_count"].iloc[0] == 2_236_682  # MobileNetV2, 10 classes
    assert (table["num_workers"] == 0).all() and (table["intra_op_threads"] == 1).all()
    assert (table["channels_last"]).all() and not (table["tf32"]).any()
    assert "harness" in result.out and "bench.csv" in result.out


@pytest.mark.slow
def test_bench_command_measures_the_keras_arm_in_its_own_process(tmp_path, run_cli):
    prepare(Workspace(tmp_path), "synthetic")
    args = ["bench", "-w", tmp_path, "--frameworks", "keras", "--batch-sizes", "4"]
    args += ["--dataset", "synthetic", "--steps", "2", "--warmup", "1", "--repeats", "2"]
    args += ["--threads", "1", "--num-workers", "0"]
    result = run_cli(*args)
    assert result.code == 0, result.err
    table = pd.read_csv(tmp_path / "results" / "bench.csv")
    assert list(table["mode"]) == ["bare", "harness", "harness+pipeline", "pipeline"]
    assert (table["num_workers"] == "autotune").all()
    assert table["param_count"].iloc[0] == 2_236_682


@pytest.mark.slow
def test_bench_measures_both_rules_and_every_arms_rows_carry_the_same_one(tmp_path, run_cli):
    args = ["bench", "-w", tmp_path, "--frameworks", "pytorch,keras-jax,keras-torch",
            "--deterministic", "on,off", "--modes", "harness", "--batch-sizes", "2",
            "--img-size", "32", "--num-classes", "10", "--steps", "1", "--warmup", "0",
            "--repeats", "1", "--threads", "1"]  # fmt: skip
    result = run_cli(*args)
    assert result.code == 0, result.err
    table = pd.read_csv(tmp_path / "results" / "bench.csv")
    assert len(table) == 6 and set(table["mode"]) == {"harness"}
    for rule, rows in table.groupby("deterministic"):
        assert sorted(rows["framework"]) == ["keras-jax", "keras-torch", "pytorch"]
        words = dict(zip(rows["framework"], rows["determinism"], strict=True))
        assert words["pytorch"] == words["keras-torch"]  # Keras on torch: the torch mechanism
        assert words["keras-jax"].startswith(
            "XLA_FLAGS=--xla_gpu_deterministic_ops=true" if rule else "off (XLA defaults)"
        )
    assert set(table["deterministic"]) == {True, False}


def test_deterministic_takes_on_off_or_both(tmp_path, run_cli):
    result = run_cli("bench", "-w", tmp_path, "--deterministic", "maybe", "--modes", "bare")
    assert result.code == 2 and "--deterministic takes on, off or on,off" in result.err
