"""Run identity by settings: sweeps never collide, identical settings share a run; command-line
overrides; a subset smaller than a batch; old run ids adopted; the Python API."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import yaml

from fwbench.config.experiment_matrix import ExperimentMatrix
from fwbench.config.train import load_train_config
from fwbench.core.fileio import append_jsonl
from fwbench.core.paths import Workspace
from fwbench.record.migrate import legacy_runs, migrate
from fwbench.record.runs import RunDir
from fwbench.study.collect import collect_runs
from fwbench.study.matrix import SmokeOptions, expand_stage

BASE = {
    "datasets": ["digits"], "models": ["mobilenetv2"], "precisions": ["fp32"],
    "seeds": [1, 2], "frameworks": ["pytorch", "keras"], "epochs_override": 2, "subset": 300,
    "overrides": {"training": {"batch_size": 32}},
}  # fmt: skip
STAGES = {
    "base": BASE,
    "low_lr": BASE | {"overrides": {"training": {"batch_size": 32}, "lr": {"base_lr": 0.05}}},
    "base_seed1": BASE | {"seeds": [1]},  # the same settings as `base`, fewer seeds
    "lr_sweep": BASE | {"seeds": [1], "sweep": {"lr.base_lr": [0.05, 0.1]}},
    "same_twice": BASE | {"seeds": [1], "sweep": {"lr.base_lr": [0.1, 0.10]}},
}


@pytest.fixture
def ws(tmp_path) -> Workspace:
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "experiment_matrix.yaml").write_text(yaml.safe_dump({"stages": STAGES}))
    return Workspace(tmp_path)


MATRIX = ExperimentMatrix.model_validate({"stages": STAGES})


def _specs(name: str, **smoke):
    return expand_stage(name, MATRIX.stage(name), load_train_config(), SmokeOptions(**smoke))


def _finish(ws: Workspace, spec, acc: float) -> None:
    """A whole done run: spec, one epochs.jsonl line per epoch, test.json, status."""
    rd = RunDir(ws.runs_dir / spec.run_id)
    rd.write_spec(spec)
    for epoch in range(1, spec.epochs + 1):
        append_jsonl(rd.epochs_path, {"epoch": epoch, "val_accuracy": acc, "train_loss": 1.0})
    rd.test_path.write_text(f'{{"accuracy": {acc}, "macro_f1": {acc}, "loss": 1.0}}')
    rd.set_status("done", test_accuracy=acc)


def _dry(run_cli, ws, stage, *args):
    res = run_cli("run", "--stage", stage, "--dry-run", "-w", ws.root, *args)
    assert res.code == 0, res.err
    return res.out


def test_stages_differing_in_one_setting_never_share_runs(ws, run_cli):
    base, low = _specs("base"), _specs("low_lr")
    assert [s.readable_id for s in base] == [s.readable_id for s in low]
    assert not {s.run_id for s in base} & {s.run_id for s in low}
    for spec in base:
        _finish(ws, spec, 0.9)
    assert "base: 4 runs (4 done" in _dry(run_cli, ws, "base")
    out = _dry(run_cli, ws, "low_lr")  # nothing of `base` counts as done for `low_lr`
    assert "low_lr: 4 runs (0 done" in out and "would launch 4 run(s)" in out
    # a stage with the same settings reuses the runs (stage1 within stage2)
    assert "base_seed1: 2 runs (2 done" in _dry(run_cli, ws, "base_seed1")
    runs, _ = collect_runs(ws, ["low_lr"])
    assert set(runs["state"]) == {"pending"} and set(runs["run_id"]) == {s.run_id for s in low}


def test_a_sweep_axis_makes_distinct_runs_and_a_column_per_swept_key(ws, run_cli):
    specs = _specs("lr_sweep")
    assert len(specs) == 4 == MATRIX.stage("lr_sweep").run_count
    assert sorted({s.train_config.lr.base_lr for s in specs}) == [0.05, 0.1]
    assert len({s.run_id for s in specs}) == 4
    for spec in specs:
        _finish(ws, spec, 0.5 + spec.train_config.lr.base_lr)
    runs, _ = collect_runs(ws, ["lr_sweep"])
    assert sorted(runs["lr.base_lr"]) == [0.05, 0.05, 0.1, 0.1]
    assert set(runs["settings"]) == {"lr.base_lr=0.05", "lr.base_lr=0.1"}
    import fwbench

    summary = fwbench.analyze(runs).summary  # the swept key is part of the cell: a row per value

    assert len(summary) == 4 and set(summary["settings"]) == set(runs["settings"])


def test_set_overrides_are_validated_like_yaml_and_recorded(ws, run_cli):
    res = run_cli("run", "--stage", "base", "--dry-run", "-w", ws.root, "--set", "lr.base_lr=-1")
    assert (
        res.code == 2
        and "invalid config key 'lr.base_lr': Input should be greater than 0" in res.err
    )
    res = run_cli("train", "--framework", "pytorch", "--dataset", "digits", "--model",
                  "mobilenetv2", "-w", ws.root, "--set", "training.batchsize=3")  # fmt: skip
    assert res.code == 2 and "invalid config key 'training.batchsize': unknown key" in res.err
    assert "--set training.batchsize=3" in res.err and "Traceback" not in res.err
    res = run_cli("train", "--framework", "pytorch", "--dataset", "digits", "--model",
                  "mobilenetv2", "-w", ws.root, "--set", "nodot")  # fmt: skip
    assert res.code == 2 and "bad --set 'nodot'" in res.err
    specs = _specs("base", sets=("lr.base_lr=0.02", "training.label_smoothing=0.1"))
    assert {s.train_config.lr.base_lr for s in specs} == {0.02}
    assert specs[0].overrides == ["lr.base_lr=0.02", "training.label_smoothing=0.1"]
    assert not {s.run_id for s in specs} & {s.run_id for s in _specs("base")}
    shortcut = _dry(run_cli, ws, "base", "--lr", "0.02", "--set", "training.label_smoothing=0.1")
    assert set(re.findall(r"(digits\S+)", shortcut)) == {s.run_id for s in specs}


def test_subset_smaller_than_a_batch_shrinks_the_batch_with_a_notice(ws, run_cli):
    specs = _specs("base", subset=20)
    assert {s.train_config.training.batch_size for s in specs} == {20}
    out = _dry(run_cli, ws, "base", "--subset", "20")
    assert "note: --subset 20 is smaller than one batch (32); training with batch size 20" in out


def test_tracking_and_workers_do_not_change_a_runs_identity():
    plain = _specs("base")
    tracked = _specs("base", sets=("tracking=mlflow",), num_workers=0)
    assert [s.run_id for s in plain] == [s.run_id for s in tracked]


def test_migrate_adopts_old_ids_and_reports_taken_ones(ws, run_cli):
    spec, other = _specs("base")[:2]
    old = RunDir(ws.runs_dir / spec.readable_id)  # named as before settings hashes
    old.write_spec(spec)
    taken = RunDir(ws.runs_dir / other.readable_id)
    taken.write_spec(other)
    _finish(ws, other, 0.8)  # the new-style directory exists already
    assert [x.path.name for x in legacy_runs(ws)] == sorted([spec.readable_id, other.readable_id])
    assert "2 run directories have ids from before settings hashes" in _dry(run_cli, ws, "base")
    done = dict((x.path.name, what) for x, what in migrate(ws))
    assert done[spec.readable_id] == f"renamed to {spec.run_id}"
    assert done[other.readable_id] == f"kept: {other.run_id} exists already"
    assert RunDir(ws.runs_dir / spec.run_id).read_spec() == spec and not old.path.exists()


def test_python_api_loads_expands_and_stays_lazy(ws):
    import fwbench

    for spec in _specs("base"):
        _finish(ws, spec, 0.9)
    runs, epochs = fwbench.load_results(ws.root, stages=["base"])
    assert len(runs) == 4 and set(runs["state"]) == {"done"} and len(epochs) == 4 * 2
    assert [s.run_id for s in fwbench.expand("base", ws.root)] == [s.run_id for s in _specs("base")]
    analysis = fwbench.analyze(runs)
    assert set(analysis.summary["framework"]) == {"pytorch", "keras"}
    code = "import sys, fwbench; print('pandas' in sys.modules, fwbench.__version__)"
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert p.stdout.split()[0] == "False"


def test_an_override_of_a_swept_key_is_refused_in_one_line(ws, run_cli):
    import fwbench
    from fwbench.core.errors import FwbenchError

    for flags in (["--lr", "0.07"], ["--set", "lr.base_lr=0.07"], ["--set", "lr={base_lr: 1}"]):
        res = run_cli("run", "--stage", "lr_sweep", "--dry-run", "-w", ws.root, *flags)
        assert res.code == 2 and "Traceback" not in res.err
        assert "overrides lr.base_lr, which stage 'lr_sweep' sweeps (0.05, 0.1)" in res.err
        assert "--only lr.base_lr=VALUE" in res.err and len(res.err.strip().splitlines()) == 1
    with pytest.raises(FwbenchError, match="which stage 'lr_sweep' sweeps"):
        fwbench.expand("lr_sweep", ws.root, sets=["lr.base_lr=0.05"])
    # a key the stage does not sweep is still a plain override
    assert len(fwbench.expand("lr_sweep", ws.root, sets=["training.label_smoothing=0.1"])) == 4


def test_a_run_is_listed_once_even_if_two_sweep_values_are_the_same_settings(ws, run_cli):
    specs = _specs("same_twice")  # 0.1 and 0.10 are one value: one run per seed and framework
    assert len(specs) == len({s.run_id for s in specs}) == 2
    out = _dry(run_cli, ws, "same_twice")
    ids = re.findall(r"(digits\S+)", out)
    assert len(ids) == len(set(ids)) == 2 and "would launch 2 run(s)" in out


def test_only_selects_by_a_swept_key_and_lines_name_the_settings(ws, run_cli):
    out = _dry(run_cli, ws, "lr_sweep", "--only", "lr.base_lr=0.1")
    lines = [ln for ln in out.splitlines() if ln.startswith("pending")]
    assert len(lines) == 2 and all(ln.endswith("[lr.base_lr=0.1]") for ln in lines)
    assert "would launch 2 run(s)" in out
    both = _dry(run_cli, ws, "lr_sweep", "--only", "lr.base_lr=0.05|0.1,framework=pytorch")
    assert sorted(re.findall(r"\[(lr.base_lr=[0-9.]+)\]", both)) == [
        "lr.base_lr=0.05",
        "lr.base_lr=0.1",
    ]
    res = run_cli(
        "run", "--stage", "lr_sweep", "--dry-run", "-w", ws.root, "--only", "lr.base_lr=0.3"
    )
    assert (
        res.code == 2 and "the stage sweeps no lr.base_lr '0.3'; its values: 0.05, 0.1" in res.err
    )
    res = run_cli("run", "--stage", "lr_sweep", "--dry-run", "-w", ws.root, "--only", "lr.bse_lr=1")
    assert res.code == 2 and "did you mean 'lr.base_lr'?" in res.err
    for spec in _specs("lr_sweep"):
        _finish(ws, spec, 0.9)
    status = run_cli("status", "-w", ws.root, "--stage", "lr_sweep").out
    assert sum("[lr.base_lr=0.05]: test acc 0.9000" in ln for ln in status.splitlines()) == 2


def test_a_shortcut_and_a_set_of_the_same_key_are_refused(ws, run_cli):
    res = run_cli("run", "--stage", "base", "--dry-run", "-w", ws.root,
                  "--set", "training.batch_size=32", "--batch-size", "16")  # fmt: skip
    assert res.code == 2
    assert "--set training.batch_size=32 and --batch-size both set training.batch_size" in res.err
    out = _dry(run_cli, ws, "base", "--lr", "0.02")  # a --set outside the stage's sweep: labelled
    assert out.count("[lr.base_lr=0.02]") == 4


def test_settings_are_what_the_run_trained_and_conclusions_are_per_settings(ws):
    import fwbench
    from fwbench.analysis.report import _conclusions

    plain = _specs("base", sets=("epochs.digits=30",))[:2]  # both train 2 epochs (the stage's)
    other = _specs("base", sets=("epochs.digits=5",))[2:]
    for spec in [*plain, *other]:
        _finish(ws, spec, 0.8)
    runs, _ = fwbench.load_results(ws.root)
    assert set(runs["settings"]) == {""} and set(runs["epochs"]) == {2}
    for spec in _specs("lr_sweep"):
        _finish(ws, spec, 0.5 + spec.train_config.lr.base_lr)
    runs, _ = fwbench.load_results(ws.root, stages=["lr_sweep"])
    text = _conclusions(fwbench.analyze(runs, ws.root))
    headings = [ln for ln in text.splitlines() if ln.startswith("- **")]
    assert len(headings) == 2
    assert [("lr.base_lr=0.05" in h, "lr.base_lr=0.1" in h) for h in headings] == [
        (True, False),
        (False, True),
    ]
    bullets = [ln for ln in text.splitlines() if ln.startswith("    - ")]
    assert len(bullets) == len(set(bullets))  # no metric twice


def test_run_takes_several_stages_and_lists_a_shared_run_once(ws, run_cli):
    out = _dry(run_cli, ws, "base", "--stage", "base_seed1")
    assert "base+base_seed1: 4 runs" in out and "would launch 4 run(s)" in out
    mine = ws.root / "mine.yaml"
    mine.write_text("lr:\n  base_lr: 0.05\n")  # one name per file; --config is the old one
    for flag in ("--train-config", "--config"):
        low = _dry(run_cli, ws, "base", flag, mine)
        assert set(re.findall(r"(digits\S+)", low)) == {s.run_id for s in _specs("low_lr")}


def test_the_python_api_reads_like_pandas(ws, tmp_path):
    import pydoc

    import fwbench
    from fwbench.core.errors import FwbenchError

    assert {"analyze", "expand", "load_results", "report"} <= set(dir(fwbench))
    text = pydoc.render_doc(fwbench, renderer=pydoc.plaintext)
    assert "load_results(workspace" in text and "(a name or a list)" in text
    for spec in _specs("lr_sweep"):
        _finish(ws, spec, 0.5 + spec.train_config.lr.base_lr)
    runs, _ = fwbench.load_results(ws.root, stages="lr_sweep")  # a name, not only a list
    assert len(runs) == 4
    with pytest.raises(FwbenchError, match="no such workspace"):
        fwbench.load_results(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FwbenchError, match="no runs/ folder"):
        fwbench.load_results(tmp_path / "empty")
    analysis = fwbench.analyze(runs)
    assert repr(analysis).startswith("<Analysis summary: 4 rows, comparison: ")
    assert "\n" not in repr(analysis)
    assert len(fwbench.analyze(runs, ws.root).summary) == 4
