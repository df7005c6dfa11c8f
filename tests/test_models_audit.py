"""``fwbench models audit``: the differences that really exist between the library builds."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from fwbench.frameworks.both import import_both
from fwbench.parity.audit import audit_model

import_both()  # torch before TensorFlow, whatever ran before this file


def _facts(rows):
    return {r.aspect: (r.pytorch, r.keras, r.differs) for r in rows}


@pytest.fixture(scope="module")
def resnet():
    return _facts(audit_model("resnet50", 32))


@pytest.mark.slow
def test_resnet50_conv_bias_epsilon_momentum_and_stride_differ(resnet):
    assert resnet["conv bias"] == ("0 of 53 convs", "53 of 53 convs", True)
    assert resnet["BatchNorm epsilon"] == ("1e-05", "1.001e-05", True)
    assert resnet["BatchNorm momentum (PyTorch convention)"] == ("0.1", "0.01", True)
    assert resnet["bottleneck stride on"] == ("3×3 (conv2)", "1×1 (1_conv)", True)


def test_resnet50_init_families_are_read_from_the_weights(resnet):
    torch_stem, keras_stem, differs = resnet["stem conv init"]
    assert torch_stem.startswith("normal") and keras_stem.startswith("uniform") and differs
    assert resnet["classifier bias init"][1] == "zeros"


@pytest.mark.slow
def test_mobilenetv2_padding_dropout_and_batchnorm_differ():
    facts = _facts(audit_model("mobilenetv2", 32))
    assert facts["strided conv padding (before/after)"] == ("1/1", "0/1", True)
    assert facts["classifier dropout"] == ("0.2", "—", True)
    assert facts["BatchNorm epsilon"] == ("1e-05", "0.001", True)
    assert facts["BatchNorm momentum (PyTorch convention)"] == ("0.1", "0.001", True)
    assert facts["conv bias"] == ("0 of 52 convs", "0 of 52 convs", False)
    assert facts["stem"] == ("conv 3×3/1 → BN → ReLU6",) * 2 + (False,)


@pytest.mark.slow
def test_convnext_differs_in_stochastic_depth_not_layer_scale():
    facts = _facts(audit_model("convnext_tiny", 64))
    assert facts["stochastic depth"] == ("0 → 0.1 over 18 blocks", "none", True)
    assert facts["layer scale init"] == ("1e-06", "1e-06", False)
    assert facts["LayerNorm epsilon"] == ("1e-06", "1e-06", False)


@pytest.mark.slow
@pytest.mark.parametrize("model", ["resnet50", "mobilenetv2"])
def test_matched_variant_removes_every_difference(model):
    rows = audit_model(model, 64, variant="matched")
    assert [r.aspect for r in rows if r.differs] == []


@pytest.mark.slow
def test_audit_command_writes_csv_and_markdown(tmp_path):
    from fwbench.cli import app

    result = CliRunner().invoke(app, ["models", "audit", "--workspace", str(tmp_path)])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tmp_path / "results" / "model_audit.csv")
    assert set(table.model) == {"mobilenetv2", "resnet50", "convnext_tiny"}
    row = table[(table.model == "resnet50") & (table.aspect == "conv bias")].iloc[0]
    assert (row.pytorch, row.keras, bool(row.differs)) == ("0 of 53 convs", "53 of 53 convs", True)
    md = (tmp_path / "results" / "model_audit.md").read_text()
    assert "### ResNet-50 (library, 32×32)" in md
    assert "| BatchNorm epsilon | 1e-05 | 1.001e-05 | yes |" in md
