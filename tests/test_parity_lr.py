"""``fwbench parity lr --stage S`` checks every dataset of the stage with the stage's recipe."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from fwbench.config.experiment_matrix import load_matrix
from fwbench.config.train import load_train_config
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


def _digits_case():
    return lr_cases(load_train_config(), "digits", epochs_override=2)[0]


def test_every_arm_holds_and_applies_its_own_schedule():
    from fwbench.parity.lr import check_lr

    r = check_lr(_digits_case())
    assert r.passed
    assert len(r.schedule) == r.plan.total_steps and r.schedule[0] == 0.0 and r.schedule.max() > 0
    assert r.max_relative_diff_applied <= r.applied_tolerance
    assert r.max_relative_diff_applied > 0  # read off a float32 update: rounding, not a copy


def test_a_keras_warmup_half_as_long_in_its_own_step_plan_fails(monkeypatch):
    import dataclasses

    import fwbench.recipe.inputs
    from fwbench.parity.lr import check_lr

    plan_of = fwbench.recipe.inputs.step_plan

    def keras_plan(spec, n_train):
        plan = plan_of(spec, n_train)
        if spec.framework != "keras":
            return plan
        return dataclasses.replace(plan, warmup_steps=max(1, plan.warmup_steps // 2))

    monkeypatch.setattr(fwbench.recipe.inputs, "step_plan", keras_plan)
    r = check_lr(_digits_case())
    assert not r.passed
    assert r.max_relative_diff_applied > 0.5  # it applied the warmup it computed


def test_a_keras_optimizer_applying_half_the_lr_fails(monkeypatch):
    from fwbench.frameworks.both import import_both

    import_both()
    from fwbench.frameworks.keras.optimizer import TorchSGD
    from fwbench.parity.lr import check_lr

    monkeypatch.setattr(TorchSGD, "_get_current_learning_rate", lambda self: self.lr64 * 0.5)
    r = check_lr(_digits_case())
    assert not r.passed
    assert r.max_relative_diff_applied == pytest.approx(0.5, rel=1e-5)


def test_a_long_schedule_applies_within_float32_momentum_rounding():
    """The demo's 8 epochs (152 steps, momentum 0.9): the float32 momentum buffer's rounding
    builds up to about 10 x 2^-24, within the bound 2^-24 / (1 - momentum) and the tolerance."""
    from fwbench.parity.lr import FLOAT32_ROUNDING, applied_tolerance, check_lr

    r = check_lr(lr_cases(load_train_config(), "digits", load_matrix(), "demo")[0])
    assert r.plan.total_steps == 152
    assert r.passed, r.max_relative_diff_applied
    assert r.max_relative_diff_applied <= FLOAT32_ROUNDING * (2 + 1 / (1 - 0.9))
    assert r.applied_tolerance == applied_tolerance(0.9) < 1e-5  # a wrong schedule is >= 1e-2
