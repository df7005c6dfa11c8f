"""The four arms (pytorch, keras = keras-tf, keras-jax, keras-torch) and the execution-mode axis.

Keras reads ``KERAS_BACKEND`` once per process, so every check on keras-jax or keras-torch runs
in a child process (``fwbench.parity.backends``); those are slow-marked (each child imports its
framework and builds models, tens of seconds on 2 CPUs).
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from fwbench.bench.measure import SpeedSettings
from fwbench.bench.run import plan_jobs
from fwbench.config.experiment_matrix import Stage
from fwbench.config.train import load_train_config
from fwbench.core.errors import FwbenchError
from fwbench.core.paths import Workspace
from fwbench.data.prepare import prepare
from fwbench.frameworks.keras.data_numpy import NumpyPipelines
from fwbench.recipe.inputs import load_inputs
from fwbench.record.runs import make_spec
from fwbench.registry.arms import KERAS_ARMS, arm_env, canonical, get_arm
from fwbench.study.matrix import expand_stage
from matrixfixtures import TINY_MATRIX, fwbench
from specs import digits_spec

ARMS4 = ("pytorch", "keras", "keras-jax", "keras-torch")


# --- registry, config, matrix (framework-free, fast) ----------------------------------------
def test_keras_tf_is_another_spelling_of_keras_everywhere():
    assert canonical("keras-tf") == "keras" and get_arm("keras-tf").keras_backend == "tensorflow"
    stage = Stage(**{**TINY_MATRIX["stages"]["tiny"], "frameworks": ["pytorch", "keras-tf"]})
    assert stage.frameworks == ["pytorch", "keras"]
    spec = digits_spec("keras-tf")
    assert spec.framework == "keras" and spec.readable_id.endswith("-keras")
    with pytest.raises(FwbenchError, match="unknown framework 'keras-mxnet'"):
        get_arm("keras-mxnet")


def test_each_keras_arm_process_gets_its_own_backend_and_jax_its_thread_count():
    assert [arm_env(a)["KERAS_BACKEND"] for a in KERAS_ARMS] == ["tensorflow", "jax", "torch"]
    assert "KERAS_BACKEND" not in arm_env("pytorch")
    assert "intra_op_parallelism_threads=1" in arm_env("keras-jax", threads="1")["XLA_FLAGS"]
    assert get_arm("keras-jax").execution("eager") == "jax.jit"  # compiled only


def test_compile_mode_is_an_axis_in_the_run_id_and_the_config_hash():
    base = load_train_config()
    stage = Stage(**{**TINY_MATRIX["stages"]["tiny"], "frameworks": list(ARMS4),
                     "compile": ["eager", "compiled"]})  # fmt: skip
    specs = expand_stage("tiny", stage, base)
    assert len(specs) == stage.run_count == 2 * 4 * 2
    by_id = {s.readable_id: s for s in specs}
    eager = by_id["digits-mobilenetv2-fp32-s42-keras-jax"]
    compiled = by_id["digits-mobilenetv2-fp32-s42-keras-jax-compiled"]
    assert (eager.compile, compiled.compile) == ("eager", "compiled")
    assert eager.config_hash != compiled.config_hash
    assert {s.framework for s in specs} == set(ARMS4)


def test_bench_plans_every_arm_in_every_execution_mode(tmp_path):
    jobs = plan_jobs(
        Workspace(tmp_path), frameworks=["pytorch", "keras-tf", "keras-jax", "keras-torch"],
        models=["mobilenetv2"], precisions=["fp32"], batch_sizes=[8], dataset="digits",
        modes=["harness"], settings=SpeedSettings(), compile_modes=("eager", "compiled"),
    )  # fmt: skip
    assert [(j.framework, j.compile) for j in jobs] == [
        (a, c) for a in ARMS4 for c in ("eager", "compiled")
    ]
    with pytest.raises(FwbenchError, match="unknown compile mode 'jit'"):
        plan_jobs(Workspace(tmp_path), frameworks=["keras"], models=["mobilenetv2"],
                  precisions=["fp32"], batch_sizes=[8], dataset="digits", modes=["harness"],
                  settings=SpeedSettings(), compile_modes=("jit",))  # fmt: skip


# --- the TensorFlow-free pipeline -----------------------------------------------------------
def test_numpy_pipeline_gives_the_pytorch_arms_pixels_exactly(tmp_path):
    from fwbench.frameworks.pytorch import data as torch_data

    ws = Workspace(tmp_path)
    prepare(ws, "synthetic")
    cfg = load_train_config().model_copy(deep=True)
    training = cfg.training.model_copy(update={"batch_size": 8, "num_workers": 0})
    cfg = cfg.model_copy(update={"training": training})
    spec = make_spec(cfg, dataset="synthetic", model="mobilenetv2", precision="fp32", seed=3,
                     framework="keras-jax", subset=40)  # fmt: skip
    inputs = load_inputs(ws, spec)
    loader, sampler = torch_data.train_loader(inputs)
    for epoch in (0, 1):
        sampler.set_epoch(epoch)
        ours = list(NumpyPipelines(inputs).train(epoch))
        theirs = list(loader)
        assert len(ours) == len(theirs) == inputs.plan.steps_per_epoch
        for (x, y), (tx, ty) in zip(ours, theirs, strict=True):
            assert np.max(np.abs(x - tx.numpy().transpose(0, 2, 3, 1))) == 0.0
            assert np.array_equal(y, ty.numpy())
    val = list(NumpyPipelines(inputs).evaluation("val"))
    assert sum(len(y) for _, y in val) == len(inputs.val.labels)


# --- every Keras backend, each in its own process (slow) -------------------------------------
@pytest.fixture(scope="module")
def sgd_steps() -> dict[str, dict]:
    from fwbench.parity.backends import run_in_arm

    rng = np.random.default_rng(0)
    weights = [rng.standard_normal((5, 3)).tolist(), rng.standard_normal(3).tolist()]
    grads = [rng.standard_normal((5, 3)).tolist(), rng.standard_normal(3).tolist()]
    args = {"weights": weights, "grads": grads, "lr": 0.05, "momentum": 0.9, "nesterov": True,
            "wd": 5e-4}  # fmt: skip
    return {arm: run_in_arm(arm, "sgd", args) for arm in KERAS_ARMS}


@pytest.mark.slow
def test_our_sgd_gives_the_same_weights_on_every_keras_backend(sgd_steps):
    ref = [np.asarray(w) for w in sgd_steps["keras"]["result"]]
    for arm in ("keras-jax", "keras-torch"):
        assert sgd_steps[arm]["keras_backend"] == get_arm(arm).keras_backend
        for a, b in zip(ref, sgd_steps[arm]["result"], strict=True):
            assert np.max(np.abs(a - np.asarray(b))) <= 1e-6 * np.max(np.abs(a))


@pytest.mark.slow
def test_keras_jax_and_keras_torch_processes_never_import_tensorflow(sgd_steps):
    assert "tensorflow" in sgd_steps["keras"]["imported"]
    for arm in ("keras-jax", "keras-torch"):
        assert "tensorflow" not in sgd_steps[arm]["imported"], sgd_steps[arm]


@pytest.mark.slow
@pytest.mark.parametrize("arm", ("keras-jax", "keras-torch"))
def test_matched_logits_and_parameter_counts_agree_on_every_backend(arm):
    from fwbench.parity.backends import run_in_arm

    models = ["mobilenetv2", "resnet50", "convnext_tiny"]
    logits = run_in_arm(arm, "logits", {"models": models, "sizes": [32]})
    assert "tensorflow" not in logits["imported"]
    rows = logits["result"]
    assert [r["model"] for r in rows] == models
    assert all(r["relative"] <= 1e-4 and r["passed"] for r in rows), rows
    cells = [[m, 32, 10, "matched"] for m in models] + [["mobilenetv2", 32, 10, "library"]]
    counts = run_in_arm(arm, "params", {"models": cells})["result"]
    # keras-tf's counts (the same builders on TensorFlow; test_models_compare holds them)
    assert [c["trainable"] for c in counts] == [2_236_682, 23_520_842, 27_824_362, 2_236_682]


@pytest.mark.slow
def test_bench_writes_rows_for_every_arm_and_execution_mode(tmp_path):
    ws = tmp_path / "ws"
    assert fwbench(ws, "data", "prepare", "digits").returncode == 0
    args = ["bench", "--frameworks", "pytorch,keras,keras-jax,keras-torch",
            "--compile", "eager,compiled", "--modes", "harness", "--batch-sizes", "4",
            "--steps", "1", "--warmup", "1", "--repeats", "1", "--threads", "1"]  # fmt: skip
    p = fwbench(ws, *args)
    assert p.returncode == 0, p.stderr[-3000:]
    table = pd.read_csv(ws / "results" / "bench.csv")
    got = set(zip(table["framework"], table["compile"], strict=True))
    assert got == {(a, c) for a in ARMS4 for c in ("eager", "compiled")}
    assert (table["samples_per_sec"] > 0).all() and (table["compile_s"] >= 0).all()
    by = table.set_index(["framework", "compile"])["execution"]
    assert by[("keras", "compiled")].startswith("tf.function(jit_compile=True)")
    assert by[("keras-jax", "eager")] == by[("keras-jax", "compiled")] == "jax.jit"
    assert by[("keras-torch", "compiled")] == by[("pytorch", "compiled")] == "torch.compile"


@pytest.mark.slow
def test_tiny_matrix_with_four_arms_collects_four_arms(tmp_path):
    ws = tmp_path / "ws"
    (ws / "configs").mkdir(parents=True)
    stage = {**TINY_MATRIX["stages"]["tiny"], "frameworks": list(ARMS4), "subset": 24}
    (ws / "configs" / "four.yaml").write_text(yaml.safe_dump({"stages": {"four": stage}}))
    assert fwbench(ws, "data", "prepare", "digits").returncode == 0
    p = fwbench(ws, "run", "--stage", "four", "--matrix", ws / "configs" / "four.yaml")
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    p = fwbench(ws, "collect")
    assert p.returncode == 0, p.stderr[-2000:]
    runs = pd.read_csv(ws / "results" / "runs.csv")
    assert sorted(set(runs["framework"])) == sorted(ARMS4) and len(runs) == 8
    assert (runs["state"] == "done").all() and set(runs["compile"]) == {"eager"}
    for run_dir in runs["run_dir"]:
        env = json.loads((ws / run_dir / "env.json").read_text())
        assert env["run"]["execution"] == get_arm(env["framework"]).execution("eager")
        if env["framework"] in ("keras-jax", "keras-torch"):
            assert "tensorflow" not in env["frameworks_imported"]
    p = fwbench(ws, "analyze")
    assert p.returncode == 0, p.stderr[-2000:]
    summary = "".join(f.read_text() for f in (ws / "analysis").glob("*.csv"))
    assert all(arm in summary for arm in ARMS4)
