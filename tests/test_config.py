"""Config validation: defaults, run counts, and one-line errors naming the file and key."""

from __future__ import annotations

import pytest

from fwbench.config.experiment_matrix import load_matrix
from fwbench.config.train import load_train_config
from fwbench.core.errors import FwbenchError


def test_default_stage_sizes_are_the_seeds():
    m = load_matrix()
    assert m.stages["stage1"].run_count == 2 * 2 * 1 * 3 * 2 == 24
    assert m.stages["stage2"].run_count == 3 * 3 * 2 * 5 * 2 == 180


def test_default_recipe():
    c = load_train_config()
    assert (c.optimizer.name, c.optimizer.nesterov, c.optimizer.momentum) == ("sgd", True, 0.9)
    assert c.training.batch_size == 256
    assert c.for_dataset("tiny-imagenet")[2] == 64 and c.for_dataset("cifar10")[2] == 32
    assert c.training.num_workers == 8 and c.training.prefetch_factor == 2


def test_user_file_merges_over_defaults(tmp_path):
    p = tmp_path / "train_config.yaml"
    p.write_text("lr:\n  base_lr: 0.05\nepochs:\n  cifar10: 7\n")
    c = load_train_config(p)
    assert c.lr.base_lr == 0.05 and c.lr.warmup_epochs == 5.0
    assert c.epochs["cifar10"] == 7 and c.epochs["cifar100"] == 100


def test_user_stage_is_added_and_replaces_by_name(tmp_path):
    p = tmp_path / "m.yaml"
    p.write_text(
        "stages:\n  stage1:\n    datasets: [cifar10]\n    models: [resnet50]\n"
        "    precisions: [fp32]\n    seeds: [1]\n    frameworks: [keras]\n"
    )
    m = load_matrix(p)
    assert m.stages["stage1"].run_count == 1 and m.stages["stage2"].run_count == 180


@pytest.mark.parametrize(
    "text, message",
    [
        ("optimiser:\n  name: sgd\n", "invalid config key 'optimiser': unknown key"),
        ("lr:\n  base_lr: fast\n", "invalid config key 'lr.base_lr'"),
        ("training:\n  batch_size: 0\n", "invalid config key 'training.batch_size'"),
        ("epochs:\n  cifar11: 3\n", "unknown dataset 'cifar11'; known: cifar10"),
        ("lr: [1, 2\n", "invalid YAML at line"),
        ("- a\n- b\n", "config must be a YAML mapping"),
    ],
)
def test_bad_train_config_is_one_line_naming_file_and_key(tmp_path, text, message):
    p = tmp_path / "train_config.yaml"
    p.write_text(text)
    with pytest.raises(FwbenchError) as e:
        load_train_config(p)
    assert message in e.value.message and str(p) in e.value.message
    assert "\n" not in e.value.message


@pytest.mark.parametrize(
    "stage, message",
    [
        (
            "models: [resnet05]",
            "unknown model 'resnet05'; known: mobilenetv2, resnet50, convnext_tiny",
        ),
        ("frameworks: [jax]", "unknown framework 'jax'; known: pytorch, keras"),
        ("precisions: [fp16]", "unknown precision 'fp16'"),
        ("seeds: ['x']", "stages.s.seeds.0"),
        ("colour: red", "stages.s.colour': unknown key"),
    ],
)
def test_bad_matrix_names_the_key(tmp_path, stage, message):
    base = {
        "datasets": "datasets: [cifar10]",
        "models": "models: [resnet50]",
        "precisions": "precisions: [fp32]",
        "seeds": "seeds: [1]",
        "frameworks": "frameworks: [keras]",
    }
    key = stage.split(":")[0]
    base[key] = stage
    p = tmp_path / "m.yaml"
    p.write_text("stages:\n  s:\n" + "".join(f"    {v}\n" for v in base.values()))
    with pytest.raises(FwbenchError) as e:
        load_matrix(p)
    assert message in e.value.message


def test_stage_overrides_are_validated(tmp_path):
    p = tmp_path / "m.yaml"
    p.write_text(
        "stages:\n  s:\n    datasets: [digits]\n    models: [resnet50]\n    precisions: [fp32]\n"
        "    seeds: [1]\n    frameworks: [keras]\n    overrides: {training: {batch_size: -1}}\n"
    )
    stage = load_matrix(p).stages["s"]
    with pytest.raises(FwbenchError, match="training.batch_size"):
        stage.train_config(load_train_config(), str(p))


def test_config_show_cli(run_cli, tmp_path):
    r = run_cli("config", "show", "-w", tmp_path)
    assert r.code == 0
    assert "stage1" in r.out and " 24 " in r.out and " 180 " in r.out
    bad = tmp_path / "configs" / "train_config.yaml"
    bad.parent.mkdir()
    bad.write_text("lr:\n  warmup: 3\n")
    r = run_cli("config", "show", "-w", tmp_path)
    assert r.code == 2 and "lr.warmup': unknown key" in r.err and str(bad) in r.err


def test_yaml_exponent_without_dot_is_a_number(tmp_path):
    p = tmp_path / "train_config.yaml"
    p.write_text("optimizer:\n  weight_decay: 5e-4\nlr:\n  warmup_epochs: 2\n")
    c = load_train_config(p)
    assert c.optimizer.weight_decay == 0.0005 and c.lr.warmup_epochs == 2.0
