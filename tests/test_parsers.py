"""Every parser is bounded and strict: each train-config key, given a wrong type, NaN, +-inf, a
huge or a negative value through ``--set``, a shortcut flag or ``train_config.yaml``, is one
line and exit 2 before anything is written; YAML with a key given twice or an alias bomb is
refused in one line."""

from __future__ import annotations

import time

import pytest

from badinputs import assert_one_line, tree_hashes
from fwbench.config.train import load_train_config

TRAIN = ("train", "--framework", "pytorch", "--dataset", "digits", "--model", "mobilenetv2")
BAD = [".nan", ".inf", "-.inf", "1e301", "-1e30", "10**30", "1" + "0" * 30, "-5", "abc", "[1, 2]"]
BAD += ["{a: 1}", "''", "null"]


def _leaves(data, prefix=""):
    for key, value in data.items():
        if isinstance(value, dict):
            yield from _leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


LEAVES = dict(_leaves(load_train_config().model_dump(mode="json")))


def _wrong_values(key: str) -> list[str]:
    default = LEAVES[key]
    values = list(BAD)
    if key == "tracking_uri":  # any text is a URI; numbers, lists and mappings are not
        values = [v for v in values if v not in ("abc", "10**30", "''", "null")]
    elif default is None:  # optional (threads): null means "the default"
        values.remove("null")
    if isinstance(default, float):  # 10**30 is a finite float: allowed where a huge value is
        values.remove("1" + "0" * 30)  # (LR, divergence limits); the bounds are tested below
    return values


def _refused(run_cli, ws, *args):
    before = tree_hashes(ws)
    line = assert_one_line(run_cli(*args), 2)
    assert tree_hashes(ws) == before and not (ws / "runs").exists()
    return line


@pytest.mark.parametrize("key", sorted(LEAVES))
def test_every_train_config_key_refuses_wrong_values_through_set(run_cli, ws, key):
    for value in _wrong_values(key):
        line = _refused(run_cli, ws, *TRAIN, "--set", f"{key}={value}")
        assert key.split(".")[-1] in line or "set twice" in line, (value, line)


def _as_yaml(key: str, value: str) -> str:
    parts = key.split(".")
    lines = [f"{'  ' * i}{p}:" for i, p in enumerate(parts[:-1])]
    return "\n".join([*lines, f"{'  ' * (len(parts) - 1)}{parts[-1]}: {value}"]) + "\n"


@pytest.mark.parametrize("key", sorted(LEAVES))
def test_every_train_config_key_refuses_wrong_values_in_yaml(run_cli, ws, key):
    path = ws / "configs" / "train_config.yaml"
    for value in _wrong_values(key):
        path.write_text(_as_yaml(key, value))
        line = _refused(run_cli, ws, *TRAIN)
        assert "train_config.yaml" in line, (value, line)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("lr.base_lr", "1e31"),
        ("lr.min_lr", "101"),
        ("optimizer.momentum", "1.0"),
        ("optimizer.weight_decay", "2"),
        ("training.label_smoothing", "1"),
        ("training.divergence.step_loss_multiple", "1e301"),
        ("training.batch_size", "1000000001"),
        ("epochs.digits", "100001"),
        ("input_size.digits", "8193"),
    ],
)
def test_values_above_their_bound_are_refused(run_cli, ws, key, value):
    line = _refused(run_cli, ws, *TRAIN, "--set", f"{key}={value}")
    assert key.split(".")[-1] in line and "less than" in line


def test_a_shortcut_does_not_hide_a_bad_set_value(run_cli, ws):
    line = _refused(run_cli, ws, *TRAIN, "--batch-size", "16", "--set", "training.batch_size=abc")
    assert "both set training.batch_size" in line


@pytest.mark.parametrize("flag", ["--lr", "--batch-size"])
@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e31", "-5", "0"])
def test_shortcut_flags_refuse_wrong_values(run_cli, ws, flag, value):
    _refused(run_cli, ws, *TRAIN, flag, value)


def test_a_key_given_twice_in_yaml_is_refused(run_cli, ws):
    (ws / "configs" / "train_config.yaml").write_text("lr:\n  base_lr: 0.05\nlr:\n  min_lr: 0\n")
    line = _refused(run_cli, ws, "config", "show")
    assert "key 'lr' is given twice" in line and "line 3" in line


@pytest.mark.parametrize("name", ["train_config.yaml", "experiment_matrix.yaml"])
def test_an_alias_bomb_is_refused_at_once(run_cli, ws, name):
    bomb = "a0: &a0 [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]\n" for i in range(1, 9)
    )
    (ws / "configs" / name).write_text(bomb)
    start = time.monotonic()
    line = _refused(run_cli, ws, "config", "show")
    assert "aliases (*name) expand" in line and name in line
    assert time.monotonic() - start < 10
    assert len(line) < 500


def test_a_few_aliases_are_still_read(run_cli, ws):
    (ws / "configs" / "train_config.yaml").write_text(
        "training: &t {batch_size: 32}\nlr: {base_lr: 0.05}\n"
    )
    result = run_cli("config", "show")
    assert result.code == 0 and "batch_size: 32" in result.out
