"""``fwbench models compare``: 18 rows of parameter counts, thresholds and shapes."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from fwbench.frameworks.both import import_both
from fwbench.parity.params import compare_one, within_threshold

import_both()  # torch before TensorFlow, whatever ran before this file

# torchvision resnet50 with a 3×3 stem; Keras adds one bias per conv output channel (26,560).
RESNET_TORCH = {10: 23_520_842, 100: 23_705_252, 200: 23_910_152}


def test_thresholds_follow_the_seed():
    assert within_threshold("mobilenetv2", 0.0) and not within_threshold("mobilenetv2", 1e-9)
    assert within_threshold("resnet50", 0.99) and not within_threshold("resnet50", 1.0)
    assert within_threshold("convnext_tiny", 4.99) and not within_threshold("convnext_tiny", 5.0)


@pytest.mark.slow
def test_resnet50_row_counts_keras_conv_biases():
    row = compare_one("resnet50", 64, 200)
    assert row.pytorch_trainable_params == RESNET_TORCH[200]
    assert row.keras_trainable_params - row.pytorch_trainable_params == 26_560
    assert row.diff_pct == pytest.approx(100 * 26_560 / RESNET_TORCH[200], abs=1e-6)
    # totals count BatchNorm moving statistics in both arms
    assert row.keras_total_params - row.keras_trainable_params == 53_120
    assert row.pytorch_total_params - row.pytorch_trainable_params == 53_120
    assert (row.pytorch_prepool_map, row.keras_prepool_map) == ("4x4", "4x4")
    assert row.pytorch_output_shape == row.keras_output_shape == "2x200"
    assert row.passed


@pytest.mark.slow
def test_compare_command_writes_18_passing_rows(tmp_path):
    from fwbench.cli import app

    result = CliRunner().invoke(app, ["models", "compare", "--workspace", str(tmp_path)])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tmp_path / "results" / "param_comparison.csv")
    assert len(table) == 18
    assert set(zip(table.model, table.input_size, table.num_classes, strict=True)) == {
        (m, s, c)
        for m in ("mobilenetv2", "resnet50", "convnext_tiny")
        for s in (32, 64)
        for c in (10, 100, 200)
    }
    assert table.passed.all() and table.shapes_passed.all()
    by_model = table.groupby("model")
    assert (by_model.diff_pct.max()["mobilenetv2"], by_model.diff_pct.max()["convnext_tiny"]) == (
        0.0,
        0.0,
    )
    resnet = table[table.model == "resnet50"]
    assert resnet.diff_pct.between(0.11, 0.1130).all()
    assert dict(zip(resnet.num_classes, resnet.pytorch_trainable_params, strict=False)) == (
        RESNET_TORCH
    )
    assert (resnet.keras_prepool_map == "4x4").all()
    mnv2 = table[(table.model == "mobilenetv2") & (table.num_classes == 10)]
    assert (mnv2.pytorch_trainable_params == 2_236_682).all()
    assert (mnv2.keras_total_params - mnv2.keras_trainable_params == 34_112).all()
