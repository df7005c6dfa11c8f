"""The attribution ladder: stage expansion, run identity, and the table `fwbench analyze` writes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fwbench.analysis.attribution import (
    attribution_table,
    primary_runs,
    report_section,
    wording,
)
from fwbench.config.experiment_matrix import load_matrix
from fwbench.config.train import load_train_config
from fwbench.core.errors import FwbenchError
from fwbench.record.runs import make_spec
from fwbench.registry.attribution_rungs import LADDER
from fwbench.study.matrix import expand_stage

SEEDS = (1, 2, 3, 4)
# Test accuracy per arm and seed: a 4 pp library gap, 3 pp of it from architecture defaults,
# 0.5 pp from initialisation, the rest inside a floor of ±0.3 pp noise.
NOISE = {1: 0.002, 2: -0.003, 3: 0.001, 4: -0.001}
ARMS = {
    ("pytorch", "library", "own", None): 0.90,
    ("keras", "library", "own", None): 0.86,
    ("pytorch", "matched", "shared", None): 0.90,
    ("keras", "matched", "own", None): 0.895,
    ("keras", "matched", "shared", None): 0.90,
    ("pytorch", "matched", "shared", "layout"): 0.90,
}


def _runs() -> pd.DataFrame:
    rows = []
    for (framework, variant, init, perturbation), acc in ARMS.items():
        for seed in SEEDS:
            # the reference (PyTorch, unperturbed) arms are exact; every other arm carries the
            # seed's noise, so each rung's differences have the same spread as the floor's
            noise = 0.0 if (framework, perturbation) == ("pytorch", None) else NOISE[seed]
            rows.append(
                {"dataset": "digits", "model": "mobilenetv2", "precision": "fp32", "seed": seed,
                 "framework": framework, "variant": variant, "init": init,
                 "perturbation": perturbation, "state": "done", "test_accuracy": acc + noise}
            )  # fmt: skip
    return pd.DataFrame(rows)


def test_the_shipped_attribution_stage_runs_six_arms_per_seed():
    stage = load_matrix().stage("attribution")
    specs = expand_stage("attribution", stage, load_train_config())
    assert stage.run_count == len(specs) == 6 * len(stage.seeds)
    ids = {
        s.readable_id.removeprefix("digits-mobilenetv2-fp32-s42-") for s in specs if s.seed == 42
    }
    assert ids == {
        "pytorch", "keras", "pytorch-matched", "keras-matched-own", "keras-matched",
        "pytorch-matched-layout",
    }  # fmt: skip
    floor = next(s for s in specs if s.perturbation == "layout")
    plain = next(s for s in specs if s.readable_id == floor.readable_id.removesuffix("-layout"))
    assert floor.train_config.training.channels_last != plain.train_config.training.channels_last
    assert floor.config_hash != plain.config_hash
    for name in ("attribution-cifar10", "attribution-cifar100", "attribution-tiny-imagenet"):
        assert load_matrix().stage(name).rungs == list(LADDER)


def test_init_is_recorded_and_part_of_the_config_hash():
    cfg = load_train_config()
    common = {"dataset": "digits", "model": "resnet50", "precision": "fp32", "seed": 1}
    shared = make_spec(cfg, framework="keras", variant="matched", **common)
    own = make_spec(cfg, framework="keras", variant="matched", init="own", **common)
    assert (shared.init, own.init) == ("shared", "own")
    assert shared.config_hash != own.config_hash and own.readable_id.endswith("keras-matched-own")
    # a PyTorch arm's own init is the shared one: one run serves both rungs
    assert make_spec(cfg, framework="pytorch", variant="matched", init="own", **common).init == (
        "shared"
    )
    assert make_spec(cfg, framework="keras", **common).init == "own"
    with pytest.raises(FwbenchError, match="needs the matched variant"):
        make_spec(cfg, framework="keras", init="shared", **common)
    with pytest.raises(FwbenchError, match="perturbation"):
        make_spec(cfg, framework="keras", perturbation="layout", **common)


def test_attribution_table_apportions_the_gap_rung_by_rung():
    table = attribution_table(_runs()).set_index("rung")
    assert list(table.index) == list(LADDER)
    mean_noise_pp = np.mean(list(NOISE.values())) * 100
    assert table.loc["library", "gap_pp"] == pytest.approx(4.0 - mean_noise_pp)
    assert table.loc["matched-own", "removed_pp"] == pytest.approx(3.5)
    assert table.loc["matched-shared", "removed_pp"] == pytest.approx(0.5)
    low, high = table.loc["matched-own", ["removed_ci_low_pp", "removed_ci_high_pp"]]
    assert low == high == pytest.approx(3.5)  # the same noise in both rungs cancels per seed
    assert not table.loc["library", "within_floor"] and table.loc["matched-shared", "within_floor"]
    assert table.loc["floor", "floor_band_pp"] > 0
    assert table.loc["library", "p_vs_floor"] < 1e-4
    line = wording(attribution_table(_runs()))[0]
    assert (
        "3.50 pp" in line
        and "architecture defaults" in line
        and "within the instability floor" in line
    )


def test_no_attribution_runs_means_no_table_and_no_report_section():
    plain = _runs()
    plain = plain[plain["perturbation"].isna()]
    assert attribution_table(plain).empty
    assert report_section(plain[plain["variant"] == "library"]) == []
    assert report_section(plain) == [
        "Initial weights of the matched Keras runs: 4 start from the PyTorch arm's initial "
        "weights for their seed (`init: shared`, rebuilt in the run's own process), 4 from "
        "Keras' own initialisers (`init: own`)."
    ]
    assert report_section(_runs())[1].startswith("### Attribution")


def test_the_arm_comparison_keeps_one_run_per_cell_arm_and_seed():
    kept = primary_runs(_runs())
    assert kept["perturbation"].isna().all()
    assert not kept.duplicated(["variant", "framework", "seed"]).any()
    matched_keras = kept[(kept["variant"] == "matched") & (kept["framework"] == "keras")]
    assert set(matched_keras["init"]) == {"shared"} and len(kept) == 4 * len(SEEDS)
    own_only = _runs()
    own_only = own_only[(own_only["init"] == "own") | (own_only["framework"] == "pytorch")]
    assert len(primary_runs(own_only)) == len(own_only[own_only["perturbation"].isna()])
