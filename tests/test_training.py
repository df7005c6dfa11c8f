"""The shared loop and both backends, in-process on tiny BN-free models (fast)."""

from __future__ import annotations

import numpy as np
import pytest

from fwbench.config.train import TrainConfig, load_train_config
from fwbench.frameworks.base import load_backend
from fwbench.frameworks.both import import_both
from fwbench.recipe.inputs import load_inputs
from fwbench.recipe.schedule import lr_table
from fwbench.record.runs import EPOCH_FIELDS, RunDir, make_spec
from fwbench.training.loop import train_run

torch, _, tf, keras = import_both()  # torch before TensorFlow for this whole module
ARMS = ("pytorch", "keras")


def linear_model(framework: str):
    """A model builder for a bias-carrying linear classifier (no BatchNorm), same init."""

    def build(model: str, num_classes: int, size: int, variant: str):
        rng = np.random.default_rng(0)
        w = rng.normal(0, 0.01, (size * size * 3, num_classes)).astype(np.float32)
        if framework == "pytorch":
            m = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(w.shape[0], num_classes))
            with torch.no_grad():
                m[1].weight.copy_(torch.from_numpy(w.T.copy()))
                m[1].bias.zero_()
            return m
        m = keras.Sequential(
            [keras.Input((size, size, 3)), keras.layers.Flatten(), keras.layers.Dense(num_classes)]
        )
        m.layers[-1].kernel.assign(w)
        return m

    return build


def config(**sections) -> TrainConfig:
    data = load_train_config().model_dump()
    data["training"] |= {"batch_size": 16, "eval_batch_size": 64, "num_workers": 0}
    for name, values in sections.items():
        data[name] |= values
    return TrainConfig.model_validate(data)


def new_run(ws, tmp_path, framework, cfg, epochs=2, subset=100, name="run") -> RunDir:
    spec = make_spec(
        cfg, dataset="synthetic", model="mobilenetv2", precision="fp32", seed=5,
        framework=framework, epochs_override=epochs, subset=subset,
    )  # fmt: skip
    rd = RunDir(tmp_path / f"{name}-{framework}")
    rd.write_spec(spec)
    return rd


def test_every_step_uses_the_same_lr_in_both_arms(synthetic_ws, tmp_path):
    cfg = config(lr={"warmup_epochs": 1.0, "base_lr": 0.05})
    used = {}
    for arm in ARMS:
        rd = new_run(synthetic_ws, tmp_path, arm, cfg)
        backend = load_backend(arm, linear_model(arm))
        used[arm] = []
        hook = used[arm].append
        state = train_run(
            rd,
            synthetic_ws,
            backend=backend,
            show_progress=False,
            on_step=lambda s, r, h=hook: h(r.lr),
        )
        assert state == "done"
        used[arm] = np.array(used[arm])
    plan = load_inputs(synthetic_ws, rd.read_spec()).plan
    expected = np.array(lr_table(cfg.lr, plan))
    assert len(expected) == plan.total_steps == 12 and expected[0] == 0.0
    for arm in ARMS:
        np.testing.assert_allclose(used[arm], expected, rtol=1e-9, atol=0)
    np.testing.assert_allclose(used["pytorch"], used["keras"], rtol=1e-9, atol=0)


@pytest.mark.parametrize("arm", ARMS)
def test_accumulating_two_half_batches_equals_one_full_batch(synthetic_ws, tmp_path, arm):
    # The linear model has no BatchNorm: with BN in train mode each micro-batch would be
    # normalised by its own statistics, so 2 x b/2 and 1 x b would be different functions.
    # warmup_epochs=0 because the warmup LR of step 0 is 0 (no update to compare).
    params = []
    for batch, acc in ((16, 1), (8, 2)):
        cfg = config(
            training={"batch_size": batch, "gradient_accumulation_steps": acc},
            lr={"warmup_epochs": 0.0},
        )
        spec = new_run(synthetic_ws, tmp_path, arm, cfg, name=f"acc{acc}").read_spec()
        backend = load_backend(arm, linear_model(arm))
        backend.setup(spec)
        backend.build(spec, load_inputs(synthetic_ws, spec))
        before = backend.parameters_numpy()
        batches = backend.train_batches(0)
        result = backend.train_step([next(batches) for _ in range(acc)], 0.1)
        assert result.count == 16 and result.lr == 0.1
        params.append([a - b for a, b in zip(backend.parameters_numpy(), before, strict=True)])
    for full, accumulated in zip(*params, strict=True):
        assert np.abs(full).max() > 1e-4  # a real update happened
        np.testing.assert_allclose(accumulated, full, rtol=1e-4, atol=1e-7)


def test_keras_sgd_follows_torch_sgd_with_a_changing_lr():
    from fwbench.frameworks.keras.optimizer import TorchSGD

    rng = np.random.default_rng(1)
    p0 = rng.normal(size=(5,)).astype(np.float32)
    grads = rng.normal(size=(6, 5)).astype(np.float32)
    lrs = [0.0, 0.05, 0.1, 0.07, 0.02, 0.001]
    tp = torch.nn.Parameter(torch.from_numpy(p0.copy()))
    topt = torch.optim.SGD([tp], lr=0.0, momentum=0.9, nesterov=True, weight_decay=5e-4)
    kv = keras.Variable(p0.copy())
    kopt = TorchSGD(momentum=0.9, nesterov=True, weight_decay=5e-4)
    kopt.build([kv])
    plain = keras.optimizers.SGD(learning_rate=0.1, momentum=0.9, nesterov=True)
    pv = keras.Variable(p0.copy())
    for lr, g in zip(lrs, grads, strict=True):
        topt.param_groups[0]["lr"] = lr
        tp.grad = torch.from_numpy(g.copy())
        topt.step()
        kopt.set_lr(lr)
        kopt.apply([tf.constant(g)], [kv])
        plain.learning_rate = lr
        plain.apply([tf.constant(g + 5e-4 * pv.numpy())], [pv])
    np.testing.assert_allclose(kv.numpy(), tp.detach().numpy(), rtol=1e-5, atol=1e-7)
    # Keras' own SGD folds the LR into its velocity: with a changing LR it ends elsewhere
    assert np.abs(pv.numpy() - tp.detach().numpy()).max() > 1e-3


@pytest.mark.parametrize("arm", ARMS)
def test_non_finite_loss_ends_the_run_as_diverged(synthetic_ws, tmp_path, arm):
    cfg = config(  # wd * lr = 5e26: blows up; the finite-explosion limit is moved out of the way
        lr={"base_lr": 1e30, "warmup_epochs": 0.0},
        training={"divergence": {"step_loss_multiple": 1e300}},
    )
    rd = new_run(synthetic_ws, tmp_path, arm, cfg)
    state = train_run(
        rd, synthetic_ws, backend=load_backend(arm, linear_model(arm)), show_progress=False
    )
    status = rd.read_status()
    assert state == status["state"] == "diverged"
    assert "non-finite training loss" in status["error"] and status["diverged_epoch"] == 1
    assert rd.epochs() == [] and rd.test_metrics() is None
    # a diverged run is final: running it again does nothing
    assert train_run(rd, synthetic_ws, backend=load_backend(arm, linear_model(arm))) == "diverged"


def test_an_exception_marks_the_run_failed_and_is_reraised(synthetic_ws, tmp_path):
    rd = new_run(synthetic_ws, tmp_path, "pytorch", config())

    def broken(*args):
        raise RuntimeError("model exploded")

    with pytest.raises(RuntimeError, match="model exploded"):
        train_run(rd, synthetic_ws, backend=load_backend("pytorch", broken), show_progress=False)
    status = rd.read_status()
    assert status["state"] == "failed" and status["error"] == "RuntimeError: model exploded"


@pytest.mark.parametrize("arm", ARMS)
def test_in_process_run_records_every_epoch_field_and_resume_is_a_no_op(
    synthetic_ws, tmp_path, arm
):
    rd = new_run(synthetic_ws, tmp_path, arm, config())
    assert train_run(
        rd, synthetic_ws, backend=load_backend(arm, linear_model(arm)), show_progress=False
    )
    epochs = rd.epochs()
    assert [e["epoch"] for e in epochs] == [1, 2]
    assert all(tuple(e) == EPOCH_FIELDS for e in epochs)
    again = train_run(
        rd, synthetic_ws, backend=load_backend(arm, linear_model(arm)), show_progress=False
    )
    assert again == "done" and rd.epochs() == epochs


def test_subset_shrinks_training_only_and_eval_subset_is_explicit(synthetic_ws):
    def inputs(**sizes):
        spec = make_spec(config(), dataset="synthetic", model="mobilenetv2", precision="fp32",
                         seed=1, framework="pytorch", **sizes)  # fmt: skip
        got = load_inputs(synthetic_ws, spec)
        return len(got.train), len(got.val), len(got.test)

    assert inputs(subset=100) == (100, 100, 200)  # synthetic: 500 / 100 / 200
    assert inputs(subset=100, eval_subset=50) == (100, 50, 50)


def test_train_log_has_one_readable_line_per_epoch_and_warns_of_a_warmup_longer_than_training(
    synthetic_ws, tmp_path, capsys
):
    rd = new_run(synthetic_ws, tmp_path, "pytorch", config(lr={"warmup_epochs": 5.0}), name="warm")
    assert train_run(rd, synthetic_ws, backend=load_backend("pytorch", linear_model("pytorch")))
    log = rd.log_path.read_text()
    for epoch in (1, 2):
        assert sum(f"pytorch epoch {epoch}/2  train loss" in ln for ln in log.splitlines()) == 1
    assert "train_loss=" not in log  # the raw record is epochs.jsonl's
    warning = "warning: LR warmup (12 steps) is as long as training (12 steps)"
    assert log.count(warning) == 1 and warning in capsys.readouterr().err
    rd = new_run(synthetic_ws, tmp_path, "pytorch", config(lr={"warmup_epochs": 1.0}), name="short")
    assert train_run(rd, synthetic_ws, backend=load_backend("pytorch", linear_model("pytorch")))
    assert "warmup" not in rd.log_path.read_text()
