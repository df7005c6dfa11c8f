"""The SGD-rule replay and the report's parity grid: numpy and pandas only, no framework."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fwbench.parity.replay import Rule, replay_step

RULE = Rule(momentum=0.9, nesterov=True, weight_decay=5e-4)


def _torch_sgd_step(p0, g, b0, lr, rule=RULE):
    """PyTorch's SGD, written out (what torch.optim.SGD does with these settings)."""
    g = g + rule.weight_decay * p0
    b1 = rule.momentum * b0 + g
    d = g + rule.momentum * b1 if rule.nesterov else b1
    return p0 - lr * d, b1


@pytest.fixture
def step():
    rng = np.random.default_rng(0)
    p0 = {"conv.weight": rng.normal(size=(8, 3, 3, 3)), "fc.weight": rng.normal(size=(10, 8))}
    g = {k: rng.normal(scale=0.1, size=v.shape) for k, v in p0.items()}
    b0 = {k: rng.normal(scale=0.1, size=v.shape) for k, v in p0.items()}
    stats = {"bn.running_mean": np.zeros(8), "bn.running_var": np.ones(8)}
    return p0 | stats, g, b0


def _after(p0, g, b0, lr, rule=RULE, dtype=np.float32):
    out = [_torch_sgd_step(p0[k], g[k], b0[k], lr, rule) for k in g]
    p1 = {k: v[0].astype(dtype) for k, v in zip(g, out, strict=True)}
    b1 = {k: v[1].astype(dtype) for k, v in zip(g, out, strict=True)}
    return p1 | {k: v for k, v in p0.items() if k not in g}, b1


def test_replay_of_pytorchs_rule_gives_its_lr_and_its_buffer(step):
    p0, g, b0 = step
    p1, b1 = _after(p0, g, b0, lr=0.05)
    r = replay_step(RULE, p0, p1, g, b0, b1)
    assert r.buffer_rel < 1e-6  # float32 storage only
    assert r.effective_lr == pytest.approx(0.05, rel=1e-5)


def test_replay_sees_a_dropped_weight_decay_a_halved_lr_and_keras_velocity(step):
    p0, g, b0 = step
    no_wd = Rule(RULE.momentum, RULE.nesterov, 0.0)
    p1, b1 = _after(p0, g, b0, lr=0.05, rule=no_wd)
    assert replay_step(RULE, p0, p1, g, b0, b1).buffer_rel > 1e-3
    p1, b1 = _after(p0, g, b0, lr=0.025)
    assert replay_step(RULE, p0, p1, g, b0, b1).effective_lr == pytest.approx(0.025, rel=1e-5)
    velocity = {k: RULE.momentum * b0[k] - 0.05 * g[k] for k in g}  # Keras' own SGD
    assert replay_step(RULE, p0, p1, g, b0, velocity).buffer_rel > 0.5


def test_replay_of_a_first_step_starts_from_a_zero_buffer(step):
    p0, g, _ = step
    zeros = {k: np.zeros_like(v) for k, v in g.items()}
    p1, b1 = _after(p0, g, zeros, lr=0.1)
    r = replay_step(RULE, p0, p1, g, {}, b1)  # PyTorch has no buffer before its first step
    assert r.buffer_rel < 1e-6 and r.effective_lr == pytest.approx(0.1, rel=1e-5)
    assert replay_step(RULE, p0, p1, g, {}, {}).buffer_rel == float("inf")  # no buffer at all


def test_report_fairness_section_shows_the_arm_precision_mode_grid(tmp_path):
    from fwbench.analysis.sections import fairness
    from fwbench.core.paths import Workspace

    ws = Workspace(tmp_path)
    ws.results_dir.mkdir(parents=True)
    key = {"model": "mobilenetv2", "dataset": "digits", "dtype": "float32", "seed": 42}
    rows = [
        key | {"framework": f, "precision": p, "compile": "eager", "check": c, "passed": ok}
        for f, p, c, ok in [
            ("keras", "fp32", "loss", True), ("keras", "fp32", "LR", True),
            ("keras", "amp", "loss", True), ("keras-jax", "fp32", "LR", False),
            ("keras-jax", "fp32", "loss", True),
        ]
    ]  # fmt: skip
    pd.DataFrame(rows).to_csv(ws.results_dir / "parity_train.csv", index=False)
    md = fairness(ws)
    grid = md.split("### Training parity")[1].split("###")[0]
    lines = [line for line in grid.splitlines() if line.startswith("|")]
    assert "amp float32 eager" in lines[0] and "fp32 float32 eager" in lines[0]
    keras_row = next(line for line in lines if line.startswith("| keras "))
    jax_row = next(line for line in lines if line.startswith("| keras-jax"))
    assert keras_row.count("pass") == 2
    assert "FAIL: LR" in jax_row and "not run" in jax_row
