"""Matched variant: PyTorch weights transferred to the Keras mirror give the same logits."""

from __future__ import annotations

import numpy as np
import pytest

from fwbench.frameworks.both import import_both
from fwbench.frameworks.transfer import transfer_weights
from fwbench.parity.outputs import RELATIVE_TOLERANCE, check_outputs, compare_logits

torch, _, _, keras = import_both()  # torch before TensorFlow, whatever ran before this file

from fwbench.frameworks.keras.models import build_model as build_keras  # noqa: E402
from fwbench.frameworks.pytorch.models import build_model as build_torch  # noqa: E402


@pytest.mark.slow
@pytest.mark.parametrize("input_size", [32, 64])
@pytest.mark.parametrize("model", ["mobilenetv2", "resnet50", "convnext_tiny"])
def test_matched_logits_agree_after_weight_transfer(model, input_size):
    result = check_outputs(model, input_size, num_classes=10, batch=2)
    assert result.max_abs_logit > 0.1  # a real signal, not all-zero logits
    assert result.relative <= RELATIVE_TOLERANCE, result
    assert result.passed


def _matched_pair(model="mobilenetv2", size=32):
    torch.manual_seed(0)
    net = build_torch(model, 10, size, variant="matched").eval()
    keras.backend.clear_session()
    mirror = build_keras(model, 10, size, variant="matched")
    return net, mirror


@pytest.mark.slow
def test_parity_check_catches_one_wrong_weight():
    net, mirror = _matched_pair()
    transfer_weights(net, mirror)
    diff, top = compare_logits(net, mirror, 32)
    assert diff / top <= RELATIVE_TOLERANCE
    layer = mirror.get_layer("features-5-conv-1-0")  # one depthwise conv in the middle
    kernel, *rest = layer.get_weights()
    layer.set_weights([kernel[::-1], *rest])  # flip the kernel: a transposition mistake
    diff, top = compare_logits(net, mirror, 32)
    assert diff / top > 100 * RELATIVE_TOLERANCE


@pytest.mark.slow
def test_transfer_refuses_a_model_with_other_layer_names():
    net = build_torch("mobilenetv2", 10, 32).eval()
    keras.backend.clear_session()
    library = build_keras("mobilenetv2", 10, 32)  # keras.applications names, not torchvision's
    with pytest.raises(ValueError, match="has no Keras layer"):
        transfer_weights(net, library)


@pytest.mark.slow
def test_transfer_fills_every_keras_layer_with_weights():
    net, mirror = _matched_pair("resnet50", 32)
    filled = transfer_weights(net, mirror)
    assert filled == sum(1 for layer in mirror.layers if layer.weights)
    np.testing.assert_array_equal(
        mirror.get_layer("fc").get_weights()[0], net.fc.weight.detach().numpy().T
    )
    assert len(mirror.trainable_weights) == len(list(net.parameters()))


@pytest.mark.slow
def test_models_audit_fails_on_any_difference_in_the_matched_variant(
    run_cli, tmp_path, monkeypatch
):
    def half_dropout_init(self, rate, **kwargs):
        original_init(self, 0.5, **kwargs)

    original_init = keras.layers.Dropout.__init__
    fine = run_cli("models", "audit", "--variant", "matched", "--model", "mobilenetv2",
                   "--workspace", tmp_path)  # fmt: skip
    assert fine.code == 0, fine.out
    monkeypatch.setattr(keras.layers.Dropout, "__init__", half_dropout_init)
    broken = run_cli("models", "audit", "--variant", "matched", "--model", "mobilenetv2",
                     "--workspace", tmp_path)  # fmt: skip
    assert broken.code == 1, broken.out
    assert "mobilenetv2: classifier dropout" in broken.out
    library = run_cli("models", "audit", "--model", "mobilenetv2", "--workspace", tmp_path)
    assert library.code == 0, library.out  # the library builds' differences are listed only
    assert "classifier dropout" in library.out
