"""Mixed precision is computed safely in every arm: one precision rule, float32 head and loss.

The float16 path (a GPU's AMP) runs on a CPU with ``training.amp_dtype: float16``, so every arm
is trained a few steps in float16 here, once with logits beyond float16's range (65504).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fwbench.config.train import load_train_config
from fwbench.core.errors import FwbenchError
from fwbench.recipe.precision import INITIAL_LOSS_SCALE, resolve_precision
from fwbench.record.runs import RunDir, make_spec
from fwbench.registry.arms import arm_env

ARMS4 = ("pytorch", "keras", "keras-jax", "keras-torch")
FLOAT16_MAX = 65504.0
TESTS = Path(__file__).parent


def test_one_rule_says_what_amp_computes_in_on_each_device():
    rule = {
        (p, a, d): tuple(vars(resolve_precision(p, a, d)).values())
        for p in ("fp32", "amp")
        for a in ("auto", "float16", "bfloat16")
        for d in ("gpu", "cpu")
    }
    assert rule[("amp", "auto", "gpu")] == (True, "float16", True)  # the seed's AMP
    assert rule[("amp", "auto", "cpu")] == (True, "bfloat16", False)
    assert rule[("amp", "float16", "cpu")] == (True, "float16", True)
    assert rule[("amp", "bfloat16", "gpu")] == (True, "bfloat16", False)
    assert {rule[k] for k in rule if k[0] == "fp32"} == {(False, "float32", False)}
    assert resolve_precision("amp", "float16", "cpu").facts() == {
        "amp_dtype": "float16", "loss_scaling": True, "initial_loss_scale": 2.0**15,
    }  # fmt: skip


def _spec(amp_dtype: str):
    cfg = load_train_config().merged({"training": {"amp_dtype": amp_dtype}}, "test")
    return make_spec(cfg, dataset="synthetic", model="mobilenetv2", precision="amp", seed=1,
                     framework="pytorch")  # fmt: skip


def test_amp_dtype_is_a_setting_in_the_hash_and_checked():
    assert _spec("auto").train_config.training.amp_dtype == "auto"  # the shipped default
    assert len({_spec(d).config_hash for d in ("auto", "float16", "bfloat16")}) == 3
    with pytest.raises(FwbenchError, match="amp_dtype"):
        _spec("float8")


def test_the_pytorch_head_computes_in_float32_under_float16_autocast():
    import torch

    from fwbench.frameworks.pytorch.models import build_model, float32_head

    net = build_model("mobilenetv2", 10, 32).eval()
    with torch.no_grad():
        net.classifier[1].bias[0] = 1e5
    x = torch.randn(2, 3, 32, 32)
    names = list(net.state_dict())
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.float16):
        plain = net(x)
        float32_head(net)
        safe = net(x)
    assert plain.dtype == torch.float16 and torch.isinf(plain[:, 0]).all()
    assert safe.dtype == torch.float32 and torch.isfinite(safe).all()
    assert float(safe[:, 0].min()) > FLOAT16_MAX and list(net.state_dict()) == names


@pytest.mark.slow
def test_the_keras_head_computes_in_float32_under_mixed_float16():
    from fwbench.frameworks.both import import_both

    _, _, _, keras = import_both()  # torch before TensorFlow
    from fwbench.frameworks.keras.models import build_model, float32_head

    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        net = build_model("mobilenetv2", 10, 32)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    head = net.get_layer("predictions")
    head.bias.assign(np.eye(10, dtype="float32")[0] * 1e5)
    x = np.random.default_rng(0).standard_normal((2, 32, 32, 3)).astype("float32")
    plain = keras.ops.convert_to_numpy(net(x, training=True))
    weights = [id(w) for w in net.weights]
    float32_head(net)
    safe = keras.ops.convert_to_numpy(net(x, training=True))
    assert plain.dtype == np.float16 and np.isinf(plain[:, 0]).all()
    assert safe.dtype == np.float32 and np.isfinite(safe).all() and safe[:, 0].min() > FLOAT16_MAX
    assert head.kernel.dtype == "float32" and [id(w) for w in net.weights] == weights


@pytest.mark.slow
@pytest.mark.parametrize("arm", ARMS4)
def test_every_arm_trains_in_float16_on_a_cpu_with_finite_losses_even_for_huge_logits(
    synthetic_ws, arm
):
    runs = {
        str(synthetic_ws.runs_dir / f"{arm}-plain"): 0.0,
        str(synthetic_ws.runs_dir / f"{arm}-huge"): 1e5,
    }
    payload = json.dumps({"arm": arm, "workspace": str(synthetic_ws.root), "runs": runs})
    env = os.environ | arm_env(arm, threads="1") | {"FWBENCH_THREADS": "1"}
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")])
    p = subprocess.run([sys.executable, str(TESTS / "ampchild.py"), payload], env=env,
                       capture_output=True, text=True, timeout=900)  # fmt: skip
    assert p.returncode == 0, p.stderr[-3000:]
    plain, huge = (RunDir(Path(r)) for r in runs)
    for rd in (plain, huge):
        env_json = json.loads(rd.env_path.read_text())["run"]
        assert (env_json["amp_dtype"], env_json["amp_dtype_setting"]) == ("float16", "float16")
        assert env_json["loss_scaling"] is True
        assert env_json["initial_loss_scale"] == INITIAL_LOSS_SCALE
        assert rd.state == "done", rd.read_status()
        (epoch,) = rd.epochs()
        losses = [epoch["train_loss"], epoch["val_loss"], rd.test_metrics()["loss"]]
        assert all(math.isfinite(v) for v in losses), (rd.path.name, losses)
    # class 0's logit is ~1e5, beyond float16: finite only because the head and loss are float32
    assert plain.epochs()[0]["val_loss"] < 10
    assert huge.epochs()[0]["val_loss"] > FLOAT16_MAX and huge.test_metrics()["loss"] > FLOAT16_MAX
