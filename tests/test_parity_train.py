"""Fairness layer 4: lockstep training parity, the shared start and the injected-bug catches."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fwbench.frameworks.both import import_both

torch, _, tf, keras = import_both()  # torch before TensorFlow, whatever ran before this file

from fwbench.config.train import load_train_config  # noqa: E402
from fwbench.core.paths import Workspace  # noqa: E402
from fwbench.frameworks.base import load_backend  # noqa: E402
from fwbench.frameworks.keras import mirrors  # noqa: E402
from fwbench.parity.train_checks import tolerances  # noqa: E402
from fwbench.recipe.inputs import load_inputs  # noqa: E402
from fwbench.record.runs import make_spec  # noqa: E402

FAST = ("--steps", "3", "--batch-size", "16")


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> Workspace:
    """A workspace with scikit-learn's digits prepared (offline)."""
    from fwbench.data.prepare import prepare

    ws = Workspace(tmp_path_factory.mktemp("lockstep"))
    prepare(ws, "digits")
    return ws


def _failed_checks(ws: Workspace, dtype: str) -> set[str]:
    rows = pd.read_csv(ws.results_dir / "parity_train.csv")
    mine = rows[(rows["dtype"] == dtype) & (rows["framework"] == "keras")]
    return set(mine.loc[~mine["passed"], "check"])


def _lockstep(run_cli, ws: Workspace, dtype: str = "float32", *extra: str):
    return run_cli(
        "parity", "train", "--model", "mobilenetv2", "--dtype", dtype, *FAST, *extra,
        "--workspace", ws.root,
    )  # fmt: skip


@pytest.mark.slow
def test_matched_pair_with_shared_init_evaluates_alike_before_training(digits):
    cfg = load_train_config()
    evaluations, weights, dropout = {}, {}, {}
    for framework in ("pytorch", "keras"):
        spec = make_spec(
            cfg, dataset="digits", model="mobilenetv2", precision="fp32", seed=7,
            framework=framework, variant="matched", subset=300, num_workers=0,
        )  # fmt: skip
        assert spec.init == "shared" and spec.readable_id.endswith(f"{framework}-matched")
        backend = load_backend(framework)
        backend.setup(spec)
        backend.build(spec, load_inputs(digits, spec))  # as `fwbench train` builds it
        evaluations[framework] = backend.evaluate("val")  # the evaluation a run uses
        weights[framework] = backend.weights()
        dropout[framework] = backend.stochastic_layers()
    assert weights["pytorch"].keys() == weights["keras"].keys()
    for name, w in weights["pytorch"].items():
        np.testing.assert_array_equal(w, weights["keras"][name], err_msg=name)
    pt, ks = evaluations["pytorch"], evaluations["keras"]
    tol = tolerances("keras", "fp32", "float32")
    assert abs(pt.loss - ks.loss) / pt.loss <= tol.eval_loss_rel
    assert np.max(np.abs(pt.probabilities - ks.probabilities)) <= tol.eval_prob_abs
    # At init BatchNorm's running statistics shrink the eval-mode activations to ~0: every
    # class gets 0.1 (why `parity train` evaluates again after its last step).
    assert pt.loss == pytest.approx(np.log(10), rel=1e-6)
    assert dropout["pytorch"] == dropout["keras"] == [("classifier.0", "dropout", 0.2)]


def test_keras_batch_norm_moves_running_variance_as_pytorch():
    x = np.random.default_rng(0).standard_normal((4, 3, 3, 5))  # n = 36 values per channel
    ref = torch.nn.BatchNorm2d(5).double().train()
    with torch.no_grad():
        expected_out = ref(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).numpy()
    layer = mirrors.torch_batch_norm_class()(
        epsilon=1e-5, momentum=mirrors.BN_MOMENTUM, dtype="float64"
    )
    out = keras.ops.convert_to_numpy(layer(x, training=True))
    np.testing.assert_allclose(layer.moving_variance.numpy(), ref.running_var.numpy(), rtol=1e-12)
    np.testing.assert_allclose(layer.moving_mean.numpy(), ref.running_mean.numpy(), atol=1e-15)
    np.testing.assert_allclose(out, expected_out.transpose(0, 2, 3, 1), atol=1e-12)
    plain = keras.layers.BatchNormalization(epsilon=1e-5, momentum=0.9, dtype="float64")
    plain(x, training=True)  # Keras' own layer: the biased variance, 35/36 of the update
    update = (ref.running_var.numpy() - 0.9) / (plain.moving_variance.numpy() - 0.9)
    np.testing.assert_allclose(update, 36 / 35, rtol=1e-10)


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_parity_train_passes_and_writes_its_tables(run_cli, digits, dtype):
    result = _lockstep(run_cli, digits, dtype, "--framework", "keras-tf")
    assert result.code == 0, result.out
    assert not _failed_checks(digits, dtype)
    steps = pd.read_csv(digits.results_dir / "parity_train_steps.csv")
    mine = steps[(steps["dtype"] == dtype) & (steps["framework"] == "keras")]
    assert list(mine["step"]) == [0, 1, 2]
    assert (mine["batch_max_abs_diff"] == 0).all() and mine["labels_equal"].all()
    first_update = mine.set_index("step").loc[1]
    assert first_update["weight_div_keras"] <= (1e-8 if dtype == "float64" else 1e-3)
    # each arm's LR from its own plan, and the LR its optimizer applied, read off the update
    assert (mine["lr_keras"] == mine["lr"]).all() and first_update["lr"] > 0
    applied = (mine["lr_effective_keras"] - mine["lr"]).abs() / mine["lr"].clip(lower=1e-300)
    assert applied.max() <= (1e-9 if dtype == "float64" else 1e-3)
    assert "lockstep checks" in result.out and "loss keras" in result.out


@pytest.mark.slow
@pytest.mark.parametrize(
    "framework,precision",
    [("keras-tf", "amp"), ("keras-jax", "fp32"), ("keras-jax", "amp"),
     ("keras-torch", "fp32"), ("keras-torch", "amp")],
)  # fmt: skip
def test_parity_train_passes_for_every_arm_and_precision(run_cli, digits, framework, precision):
    result = _lockstep(run_cli, digits, "float32", "--framework", framework,
                       "--precision", precision)  # fmt: skip
    assert result.code == 0, result.out
    rows = pd.read_csv(digits.results_dir / "parity_train.csv")
    arm = "keras" if framework == "keras-tf" else framework
    mine = rows[(rows["framework"] == arm) & (rows["precision"] == precision)]
    assert len(mine) > 10 and mine["passed"].all()


@pytest.mark.slow
def test_a_keras_process_rebuilds_the_shared_init_after_tensorflow_is_loaded():
    # A Keras training process imports TensorFlow first; loading torch's triton after it
    # segfaults (exit 139) unless `frameworks.both.import_torch` blocks triton first.
    import subprocess
    import sys

    code = (
        "import fwbench.frameworks.keras.backend, sys\n"
        "assert 'tensorflow' in sys.modules and 'torch' not in sys.modules\n"
        "from fwbench.frameworks.transfer import shared_initial_state\n"
        "state = shared_initial_state('mobilenetv2', 10, 32, 5)\n"
        "print(len(state), float(abs(state['classifier.1.weight']).sum()))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    torch.manual_seed(5)
    from fwbench.frameworks.pytorch.models import build_model

    expected = (
        build_model("mobilenetv2", 10, 32, "matched").classifier[1].weight.detach().abs().sum()
    )
    count, total = done.stdout.split()
    assert int(count) == 262 and float(total) == pytest.approx(float(expected), rel=1e-6)


@pytest.mark.slow
def test_audit_lists_the_running_variance_rule_for_the_library_build_only():
    from fwbench.parity.audit import audit_model

    for variant, keras_rule in (("library", "biased (n)"), ("matched", "unbiased (n/(n−1))")):
        row = next(r for r in audit_model("mobilenetv2", 32, variant=variant)
                   if r.aspect == "BN running variance")  # fmt: skip
        assert (row.pytorch, row.keras) == ("unbiased (n/(n−1))", keras_rule)
        assert row.differs == (variant == "library")


def test_compiled_lockstep_keeps_an_eager_control_so_the_floor_stays_a_floor():
    from fwbench.parity.lockstep import lockstep_specs

    common = {"dataset": "digits", "model": "mobilenetv2", "seed": 0, "batch_size": 16}
    compiled = lockstep_specs(load_train_config(), compile_mode="compiled", **common)
    assert compiled["pytorch"].compile == compiled["keras"].compile == "compiled"
    assert compiled["control"].compile == "eager"  # Inductor ignores the layout toggle
    assert compiled["control"].perturbation == "layout"
    eager = lockstep_specs(load_train_config(), **common)
    assert {s.compile for s in eager.values()} == {"eager"}


@pytest.mark.slow
def test_parity_train_passes_compiled_with_a_floor_of_float32_size(run_cli, digits):
    # keras-torch: torch.compile on both sides of the comparison (the cheapest compiled arm)
    result = _lockstep(run_cli, digits, "float32", "--framework", "keras-torch",
                       "--compile", "compiled")  # fmt: skip
    assert result.code == 0, result.out
    steps = pd.read_csv(digits.results_dir / "parity_train_steps.csv")
    mine = steps[(steps["framework"] == "keras-torch") & (steps["compile"] == "compiled")]
    first = mine.set_index("step").loc[1]
    # measured 2.83e-07 (eager control) where the compiled layout-toggled control gave 8.7e-11
    assert 1e-8 < first["weight_div_control"] < 1e-5
    assert first["weight_div_keras"] / first["weight_div_control"] < 2.0


@pytest.mark.slow
def test_float64_lockstep_on_keras_torch_is_float64_throughout(run_cli, digits):
    # Keras' own BatchNormalization and ops.mean (global pooling, the loss) compute a float64
    # model in float32 off TensorFlow (result_type(float64, float32) is float32 there)
    result = _lockstep(run_cli, digits, "float64", "--framework", "keras-torch")
    assert result.code == 0, result.out
    steps = pd.read_csv(digits.results_dir / "parity_train_steps.csv")
    mine = steps[(steps["dtype"] == "float64") & (steps["framework"] == "keras-torch")]
    first = mine.set_index("step")
    assert first.loc[0, "loss_rel"] < 1e-7  # 2.8e-7 with Keras' BN and mean; now 6.6e-9
    assert first.loc[1, "weight_div_keras"] < 1e-10  # 3.8e-8 with them; now 1.3e-12
