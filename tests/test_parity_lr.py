"""``fwbench parity lr --stage S`` checks every dataset of the stage with the stage's recipe."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from fwbench.config.train import load_matrix, load_train_config
from fwbench.parity.lr import lr_cases, step_plan
from fwbench.registry.datasets import get_dataset

STAGE = {
    "stages": {
        "two": {
            "datasets": ["digits", "synthetic"],
            "models": ["mobilenetv2"],
            "precisions": ["fp32"],
            "seeds": [1],
            "frameworks": ["pytorch", "keras"],
            "epochs_override": 2,
            "subset": 64,
            "overrides": {"training": {"batch_size": 16}, "lr": {"warmup_epochs": 1}},
        }
    }
}


@pytest.fixture
def matrix_path(tmp_path):
    path = tmp_path / "configs" / "experiment_matrix.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(yaml.safe_dump(STAGE))
    return path


def test_a_stage_gives_one_case_per_dataset_with_its_recipe(matrix_path):
    cfg = load_train_config()
    cases = lr_cases(cfg, "cifar10", load_matrix(matrix_path), "two")
    assert [c.dataset for c in cases] == ["digits", "synthetic"]
    for case in cases:
        assert case.config.training.batch_size == 16 and case.config.lr.warmup_epochs == 1
        assert case.plan == step_plan(case.config, case.dataset, 64, 2)
        assert case.plan.steps_per_epoch == 64 // 16 and case.plan.total_steps == 8
    alone = lr_cases(cfg, "synthetic", subset=10**6)  # a subset above the split: the split
    assert [c.dataset for c in alone] == ["synthetic"]
    full = get_dataset("synthetic").train_size // cfg.training.batch_size
    assert alone[0].plan.steps_per_epoch == full == 1


@pytest.mark.slow
def test_parity_lr_cli_checks_every_dataset_of_the_stage(matrix_path, run_cli):
    ws = matrix_path.parent.parent
    res = run_cli("parity", "lr", "--stage", "two", "--workspace", ws)
    assert res.code == 0, res.err
    assert "digits: LR per optimizer step" in res.out and "synthetic: LR per" in res.out
    table = pd.read_csv(ws / "results" / "parity_lr.csv")
    both = table[table["arm"].isna()]  # pytorch vs keras; then one row per other Keras arm
    assert both["dataset"].tolist() == ["digits", "synthetic"]
    others = table[table["arm"].notna()]
    assert sorted(zip(others["dataset"], others["arm"], others["lr_dtype"], strict=True)) == [
        (d, a, t) for d in ("digits", "synthetic")
        for a, t in (("keras-jax", "float32"), ("keras-torch", "float64"))
    ]  # fmt: skip
    assert others["float32_lr_identical"].all()
    assert table["passed"].all() and (table["optimizer_steps"] == 8).all()
