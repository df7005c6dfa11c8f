"""Each check of ``fwbench parity train`` is proven by the bug it exists to catch, in FP32.

The nine bugs of issue 19 (plus Keras' biased running variance), injected one at a time into
the Keras (TensorFlow) or PyTorch arm in this process with ``monkeypatch``: ``parity train``
must exit 1 and the named check must be among the failed ones. One prepared workspace and the
smallest model (MobileNetV2, 3 steps of 16 images) serve every case.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from fwbench.frameworks.both import import_both

torch, _, tf, keras = import_both()  # torch before TensorFlow, whatever ran before this file

import fwbench.recipe.inputs  # noqa: E402
from fwbench.core.paths import Workspace  # noqa: E402
from fwbench.frameworks.keras import backend as keras_backend  # noqa: E402
from fwbench.frameworks.keras import mirrors  # noqa: E402
from fwbench.frameworks.keras.optimizer import TorchSGD  # noqa: E402
from fwbench.frameworks.keras.tensorflow import step as step_tf  # noqa: E402
from fwbench.frameworks.pytorch import backend as torch_backend  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def digits(tmp_path_factory) -> Workspace:
    """A workspace with scikit-learn's digits prepared (offline), shared by every case."""
    from fwbench.data.prepare import prepare

    ws = Workspace(tmp_path_factory.mktemp("injections"))
    prepare(ws, "digits")
    return ws


class KerasOwnSGD(keras.optimizers.SGD):
    """Keras' own SGD, given the two hooks the Keras arm drives its optimizer through."""

    def __init__(self, momentum, nesterov, weight_decay):
        super().__init__(learning_rate=0.0, momentum=momentum, nesterov=nesterov)
        self.lr64 = keras.Variable(0.0, dtype="float64", trainable=False)

    def set_lr(self, lr: float) -> float:
        self.learning_rate = lr
        self.lr64.assign(lr)
        return self.held_lr(lr)

    def held_lr(self, lr: float) -> float:
        return float(np.float64(lr))


def _keras_label_smoothing(mp):
    build = keras_backend.KerasBackend.build

    def smoothing_build(self, spec, inputs):
        build(self, spec, inputs)
        self.label_smoothing = 0.1  # read when the step is traced

    mp.setattr(keras_backend.KerasBackend, "build", smoothing_build)


def _keras_half_warmup(mp):
    plan_of = fwbench.recipe.inputs.step_plan

    def keras_plan(spec, n_train):
        plan = plan_of(spec, n_train)
        if spec.framework != "keras":
            return plan
        return dataclasses.replace(plan, warmup_steps=plan.warmup_steps // 2)

    mp.setattr(fwbench.recipe.inputs, "step_plan", keras_plan)


def _pytorch_bn_eps(mp):
    build = torch_backend.build_seeded

    def eps_build(*args, **kwargs):
        model = build(*args, **kwargs)
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.eps = 1e-3
        return model

    mp.setattr(torch_backend, "build_seeded", eps_build)


def _keras_eval_in_training_mode(mp):
    def eval_impl(self, x, y):
        logits = tf.cast(self.b.model(x, training=True), tf.float32)
        loss = keras_backend.loss_per_image(logits, y, 0.0)
        return tf.reduce_sum(loss), tf.nn.softmax(logits, axis=-1)

    mp.setattr(step_tf.Step, "_eval_impl", eval_impl)


def _keras_dropout(mp):
    build = keras_backend._default_builder

    def dropout_build(*args):
        model = build(*args)
        model.get_layer("classifier-0").rate = 0.5
        return model

    mp.setattr(keras_backend, "_default_builder", dropout_build)


INJECTED = {
    # bug -> (how to inject it, the check that must fail)
    "keras_own_sgd": (
        lambda mp: mp.setattr(keras_backend, "TorchSGD", KerasOwnSGD),
        "SGD rule replay: momentum buffer, worst relative",
    ),
    "keras_weight_decay_dropped": (
        lambda mp: mp.setattr(keras_backend, "TorchSGD", lambda m, n, wd: TorchSGD(m, n, 0.0)),
        "SGD rule replay: momentum buffer, worst relative",
    ),
    "keras_bn_momentum_0.99": (
        lambda mp: mp.setattr(mirrors, "BN_MOMENTUM", 0.99),
        "steps 0-1: BN running_var, worst channel",
    ),
    "keras_biased_running_variance": (
        lambda mp: mp.setattr(
            mirrors, "torch_batch_norm_class", lambda: keras.layers.BatchNormalization
        ),
        "steps 0-1: BN running_var, worst channel",
    ),
    "keras_label_smoothing_only": (_keras_label_smoothing, "steps 0-1: loss, relative"),
    "keras_warmup_half_as_long": (
        _keras_half_warmup,
        "LR: each arm's own schedule vs pytorch's, worst relative",
    ),
    "keras_optimizer_applies_half_the_lr": (
        lambda mp: mp.setattr(TorchSGD, "_get_current_learning_rate", lambda self: self.lr64 * 0.5),
        "LR: applied by each optimizer (read back) vs pytorch's schedule, worst relative",
    ),
    "pytorch_bn_eps_1e-3": (_pytorch_bn_eps, "steps 0-1: loss, relative"),
    "keras_eval_in_training_mode": (
        _keras_eval_in_training_mode,
        "evaluate('val') at the start: class probabilities, max |Δ|",
    ),
    "keras_classifier_dropout_0.5": (
        _keras_dropout,
        "dropout: layers differing in placement, kind or rate",
    ),
}


def _failed_checks(ws: Workspace) -> set[str]:
    rows = pd.read_csv(ws.results_dir / "parity_train.csv")
    mine = rows[(rows["dtype"] == "float32") & (rows["framework"] == "keras")]
    return set(mine.loc[~mine["passed"], "check"])


@pytest.mark.parametrize("bug", list(INJECTED))
def test_parity_train_catches_an_injected_bug_in_fp32(run_cli, digits, monkeypatch, bug):
    inject, check = INJECTED[bug]
    inject(monkeypatch)
    result = run_cli(
        "parity", "train", "--framework", "keras-tf", "--model", "mobilenetv2",
        "--steps", "3", "--batch-size", "16", "--workspace", digits.root,
    )  # fmt: skip
    assert result.code == 1, result.out
    failed = _failed_checks(digits)
    assert check in failed, (failed, result.out)
