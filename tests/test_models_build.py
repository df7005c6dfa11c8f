"""Library model builders in both arms: stems, heads, shapes, registry errors."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from fwbench.core.errors import FwbenchError
from fwbench.frameworks.both import import_both
from fwbench.registry.stems import stem_for

torch, _, _, keras = import_both()  # torch before TensorFlow, whatever ran before this file

from fwbench.frameworks.keras.models import build_model as build_keras  # noqa: E402
from fwbench.frameworks.pytorch.models import build_model as build_torch  # noqa: E402


@pytest.mark.slow
def test_import_both_loads_torch_before_tensorflow_in_a_fresh_process():
    code = "from fwbench.frameworks.both import import_both; import_both(); print('ok')"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-500:]
    assert done.stdout.strip() == "ok"


def test_unknown_model_is_a_user_error_listing_known_models():
    with pytest.raises(FwbenchError, match="unknown model 'resnet05'; known: mobilenetv2"):
        build_torch("resnet05", 10, 32)
    with pytest.raises(FwbenchError, match="unknown model"):
        build_keras("resnet05", 10, 32)


def test_unsupported_input_size_and_variant_are_user_errors():
    with pytest.raises(FwbenchError, match="input size 48"):
        stem_for("resnet50", 48)
    with pytest.raises(FwbenchError, match="unknown variant 'tuned'"):
        build_torch("mobilenetv2", 10, 32, variant="tuned")


@pytest.mark.slow
def test_resnet50_prepool_map_is_4x4_at_64_in_both_arms():
    net = build_torch("resnet50", 200, 64).eval()
    seen = {}
    net.layer4.register_forward_hook(lambda _m, _i, out: seen.update(shape=tuple(out.shape)))
    with torch.no_grad():
        logits = net(torch.zeros(2, 3, 64, 64))
    assert seen["shape"] == (2, 2048, 4, 4)
    assert tuple(logits.shape) == (2, 200)

    keras.backend.clear_session()
    k = build_keras("resnet50", 200, 64)
    assert tuple(k.get_layer("conv5_block3_out").output.shape) == (None, 4, 4, 2048)
    assert tuple(k.get_layer("conv1_conv").kernel.shape) == (3, 3, 3, 64)
    assert k.get_layer("pool1_pool").__class__.__name__ == "MaxPooling2D"


@pytest.mark.slow
def test_resnet50_at_32_drops_the_maxpool_and_still_ends_at_4x4():
    assert isinstance(build_torch("resnet50", 10, 32).maxpool, torch.nn.Identity)
    keras.backend.clear_session()
    k = build_keras("resnet50", 10, 32)
    assert k.get_layer("pool1_pool").__class__.__name__ == "Identity"
    assert tuple(k.get_layer("conv5_block3_out").output.shape) == (None, 4, 4, 2048)


@pytest.mark.slow
def test_keras_models_output_logits_without_softmax():
    keras.backend.clear_session()
    k = build_keras("mobilenetv2", 100, 32)
    out = np.asarray(k(np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype("float32")))
    assert out.shape == (2, 100)
    assert not np.allclose(out.sum(axis=1), 1.0)  # softmax rows would sum to 1
    assert (out < 0).any()


@pytest.mark.slow
def test_convnext_stem_is_2x2_stride_2_in_both_arms():
    net = build_torch("convnext_tiny", 10, 32)
    assert net.features[0][0].kernel_size == (2, 2) and net.features[0][0].stride == (2, 2)
    keras.backend.clear_session()
    k = build_keras("convnext_tiny", 10, 32)
    conv = k.get_layer("convnext_tiny_stem").layers[0]
    assert conv.kernel_size == (2, 2) and conv.strides == (2, 2)
