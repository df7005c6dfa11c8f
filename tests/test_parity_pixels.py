"""``fwbench parity pixels``: the same image gives the same tensor in both arms."""

from __future__ import annotations

import pytest

from fwbench.config.train import load_train_config
from fwbench.core.paths import Workspace
from fwbench.data.prepare import prepare


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    ws = Workspace(tmp_path_factory.mktemp("ws"))
    prepare(ws, "synthetic")
    return ws


def test_validation_image_matches_exactly_with_and_without_augmentation(ws):
    from fwbench.parity.pixels import check_pixels

    data = load_train_config().model_dump()
    data["augmentation"]["synthetic"] = {"random_crop_padding": 4, "horizontal_flip": True}
    cfg = type(load_train_config()).model_validate(data)
    rows = check_pixels(ws, "synthetic", cfg, split="val", index=7)
    numpy = "numpy pipeline (keras-jax, keras-torch): "
    assert [r.check for r in rows] == [
        "normalised", "crop+flip (pad 4, offset 8)",
        f"{numpy}normalised", f"{numpy}crop+flip (pad 4, offset 8)",
    ]  # fmt: skip
    assert all(r.shape == (32, 32, 3) for r in rows)
    assert all(r.max_abs_diff == 0.0 and r.passed for r in rows)


def test_parity_pixels_command_prints_a_passing_table(ws, run_cli):
    result = run_cli("parity", "pixels", "--dataset", "synthetic", "--workspace", ws.root)
    assert result.code == 0, result.err
    assert "normalised" in result.out and result.out.count("pass") == 4


def test_parity_pixels_rejects_an_index_outside_the_split(ws, run_cli):
    result = run_cli("parity", "pixels", "--index", "100000", "--workspace", ws.root)
    assert result.code == 2 and "outside the val split" in result.err
