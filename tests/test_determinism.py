"""One determinism rule for every arm: each framework's mechanism, recorded, and speed compared
only between runs under the same rule (issue 18)."""

from __future__ import annotations

import pandas as pd
import pytest

from fwbench.analysis.speed_rules import refusal_lines
from fwbench.analysis.stats import analyze
from fwbench.analysis.verdicts import verdict_table
from fwbench.config.analysis import load_analysis_config
from fwbench.registry.arms import FRAMEWORKS, arm_env
from fwbench.registry.determinism import CUBLAS_VAR, XLA_FLAG, environment, mechanism, runtime

CFG = load_analysis_config()


def test_each_arm_starts_with_its_frameworks_variables_for_the_rule(monkeypatch):
    monkeypatch.delenv(CUBLAS_VAR, raising=False)
    monkeypatch.setenv("XLA_FLAGS", "--xla_dump_to=/tmp/x --xla_gpu_deterministic_ops=false")
    assert [runtime(a) for a in FRAMEWORKS] == ["torch", "tf", "jax", "torch"]
    for arm in ("pytorch", "keras-torch"):  # Keras on torch: the torch mechanism
        assert arm_env(arm, deterministic=True)[CUBLAS_VAR] == ":4096:8"
        assert CUBLAS_VAR not in arm_env(arm, deterministic=False)
    on = arm_env("keras-jax", "1", deterministic=True)["XLA_FLAGS"].split()
    assert on[:2] == ["--xla_dump_to=/tmp/x", XLA_FLAG]  # the user's own flag kept, ours once
    assert "intra_op_parallelism_threads=1" in on  # the thread flags still follow
    off = arm_env("keras-jax", "2", deterministic=False)["XLA_FLAGS"]
    assert off == "--xla_dump_to=/tmp/x"
    assert environment("keras", True, {}) == {}  # TensorFlow: enable_op_determinism() at setup
    assert "XLA_FLAGS" not in arm_env("pytorch", deterministic=True)
    assert XLA_FLAG not in arm_env("keras-jax", "2").get("XLA_FLAGS", "")  # None: left alone


def test_the_recorded_mechanism_names_the_frameworks_own_switch():
    assert mechanism("torch", True).startswith("torch.use_deterministic_algorithms")
    assert mechanism("tf", True) == "tf.config.experimental.enable_op_determinism()"
    assert mechanism("jax", True) == f"XLA_FLAGS={XLA_FLAG}"
    assert mechanism("torch", False) == "off (cudnn.benchmark autotuning)"


def _cell(deterministic: dict[str, bool]) -> pd.DataFrame:
    rows = []
    for fw, det in deterministic.items():
        for seed in range(1, 6):
            rows.append({
                "run_id": f"s{seed}-{fw}", "stage": "t", "dataset": "cifar10",
                "model": "resnet50", "precision": "fp32", "variant": "library", "seed": seed,
                "framework": fw, "state": "done", "test_accuracy": 0.9 + seed / 1000,
                "epoch_time_s": (30.0 if fw == "pytorch" else 40.0) + seed / 10,
                "images_per_second": 1000.0 + seed, "deterministic": det,
            })  # fmt: skip
    return pd.DataFrame(rows)


@pytest.mark.slow
def test_speed_is_not_compared_between_runs_of_different_determinism():
    mixed = _cell({"pytorch": True, "keras-jax": False})
    table = verdict_table(mixed, CFG)
    assert set(table["metric"]) == {"test_accuracy"}  # speed metrics left out of the cell
    assert refusal_lines(mixed) == [
        "cifar10/resnet50/fp32: runs differ in determinism (keras-jax: off; pytorch: on): "
        "speed not compared"
    ]
    same = _cell({"pytorch": True, "keras-jax": True})
    assert {"epoch_time_s", "images_per_second"} <= set(verdict_table(same, CFG)["metric"])
    assert refusal_lines(same) == []


@pytest.mark.slow
def test_the_amp_speed_up_needs_both_precisions_under_one_rule():
    fp32 = _cell({"pytorch": True})
    amp = fp32.assign(precision="amp", epoch_time_s=fp32["epoch_time_s"] / 2)
    same = analyze(pd.concat([fp32, amp], ignore_index=True), CFG).amp
    assert same["speedup"].iloc[0] == pytest.approx(2.0)
    mixed = pd.concat([fp32, amp.assign(deterministic=False)], ignore_index=True)
    assert pd.isna(analyze(mixed, CFG).amp["speedup"].iloc[0])
