"""A workspace of hand-made run directories in the real contract (spec/status/epochs/test/env).

Stage ``fx`` (digits, 2 models x fp32/amp x seeds 1-3 x both frameworks = 24 expected runs):
- mobilenetv2 fp32: all six done, accuracies in ``ACC`` (the cell the tests check numbers on)
- mobilenetv2 amp: all six done, every seed exactly 0.90 in both arms (constant samples)
- resnet50 fp32: pytorch three done; keras seed 1 done, seed 2 failed, seed 3 diverged
- resnet50 amp: pytorch seed 1 done, seeds 2-3 missing; keras seed 1 spec only (pending),
  seed 2 running, seed 3 missing
"""

from __future__ import annotations

from pathlib import Path

import yaml

from fwbench.config.train import load_train_config
from fwbench.core.fileio import append_jsonl, write_json
from fwbench.record.runs import RunDir, make_spec

STAGE = "fx"
SEEDS = (1, 2, 3)
EPOCHS = 4
ACC = {
    ("mobilenetv2", "fp32", "pytorch"): [0.912, 0.925, 0.918],
    ("mobilenetv2", "fp32", "keras"): [0.871, 0.884, 0.866],
    ("resnet50", "fp32", "pytorch"): [0.81, 0.83, 0.82],
    ("resnet50", "fp32", "keras"): [0.80],
    ("resnet50", "amp", "pytorch"): [0.79],
}
# seconds per epoch after warm-up: AMP is faster, keras slower than pytorch
EPOCH_TIME = {"pytorch": 10.0, "keras": 12.0}
AMP_FACTOR = 0.5
MATRIX = {
    "stages": {
        STAGE: {
            "description": "analysis fixture",
            "datasets": ["digits"],
            "models": ["mobilenetv2", "resnet50"],
            "precisions": ["fp32", "amp"],
            "seeds": list(SEEDS),
            "frameworks": ["pytorch", "keras"],
            "epochs_override": EPOCHS,
            "subset": 300,
        }
    }
}


def _spec(model: str, precision: str, seed: int, framework: str):
    return make_spec(
        load_train_config(),
        dataset="digits",
        model=model,
        precision=precision,
        seed=seed,
        framework=framework,
        epochs_override=EPOCHS,
        subset=300,
        stage=STAGE,
    )


def _epoch_records(final_acc: float, seconds: float, diverge: bool = False) -> list[dict]:
    records = []
    for epoch in range(1, EPOCHS + 1):
        frac = epoch / EPOCHS
        loss = 2.3 * (1.1 - frac) * (1.5 - final_acc)
        records.append(
            {
                "epoch": epoch,
                "train_loss": None if diverge and epoch == 2 else loss,
                "train_accuracy": final_acc * frac,
                "val_loss": loss * 1.1,
                "val_accuracy": final_acc * (0.5 + 0.5 * frac),
                "val_macro_f1": final_acc * (0.48 + 0.5 * frac),
                # the first epoch pays warm-up: three times slower
                "epoch_time_seconds": seconds * (3 if epoch == 1 else 1) + 0.01 * epoch,
                "learning_rate": 0.1 * (1 - frac),
                "images_per_second": 300 / seconds / (3 if epoch == 1 else 1),
                "data_time_seconds": 0.1 * seconds,
            }
        )
    return records[:2] if diverge else records


def _write_run(runs: Path, model: str, precision: str, seed: int, framework: str, kind: str):
    spec = _spec(model, precision, seed, framework)
    run = RunDir(runs / spec.run_id)
    run.write_spec(spec)
    write_json(
        run.env_path,
        {
            "hostname": "node-7",
            "cpu_model": "Fixture CPU @ 2.0GHz",
            "framework": framework,
            # the backend's facts, as fwbench train records them
            "run": {"device": "cpu", "amp_dtype": "bfloat16" if precision == "amp" else None},
        },
    )
    if kind == "pending":
        return
    run.set_status("running")
    if kind == "running":
        append_jsonl(run.epochs_path, _epoch_records(0.5, 10.0)[0])
        return
    seconds = EPOCH_TIME[framework] * (AMP_FACTOR if precision == "amp" else 1.0)
    if kind == "failed":
        for record in _epoch_records(0.5, seconds)[:1]:
            append_jsonl(run.epochs_path, record)
        run.set_status("failed", error="RuntimeError: out of memory")
        return
    if kind == "diverged":
        for record in _epoch_records(0.3, seconds, diverge=True):
            append_jsonl(run.epochs_path, record)
        run.set_status("diverged", error="train loss is NaN at epoch 2")
        return
    acc = ACC.get((model, precision, framework), [0.90, 0.90, 0.90])[SEEDS.index(seed)]
    for record in _epoch_records(acc, seconds + 0.1 * seed):
        append_jsonl(run.epochs_path, record)
    write_json(
        run.test_path,
        {
            "accuracy": acc,
            "macro_f1": acc - 0.01,
            "top5_accuracy": min(1.0, acc + 0.05),
            "per_class_accuracy": [acc - 0.02, acc + 0.02],
            "ece": 0.02 + (1.0 - acc) / 5,
            "loss": 1.0 - acc,
            "confusion_matrix": [[5, 1], [0, 6]],
            "best_epoch": EPOCHS,
        },
    )
    run.set_status("done")


LAYOUT = {
    ("mobilenetv2", "fp32", "pytorch"): ("done", "done", "done"),
    ("mobilenetv2", "fp32", "keras"): ("done", "done", "done"),
    ("mobilenetv2", "amp", "pytorch"): ("done", "done", "done"),
    ("mobilenetv2", "amp", "keras"): ("done", "done", "done"),
    ("resnet50", "fp32", "pytorch"): ("done", "done", "done"),
    ("resnet50", "fp32", "keras"): ("done", "failed", "diverged"),
    ("resnet50", "amp", "pytorch"): ("done", "missing", "missing"),
    ("resnet50", "amp", "keras"): ("pending", "running", "missing"),
}


def build_workspace(root: Path) -> Path:
    """Write the fixture workspace (matrix config + run directories) under ``root``."""
    (root / "configs").mkdir(parents=True, exist_ok=True)
    (root / "configs" / "experiment_matrix.yaml").write_text(yaml.safe_dump(MATRIX))
    for (model, precision, framework), kinds in LAYOUT.items():
        for seed, kind in zip(SEEDS, kinds, strict=True):
            if kind != "missing":
                _write_run(root / "runs", model, precision, seed, framework, kind)
    return root


def find_run(runs_root: Path, readable_id: str) -> RunDir:
    """The run directory whose id is ``readable_id`` plus a settings hash (one at most exists);
    ``runs_root/readable_id`` (absent) when there is none yet."""
    dashes = readable_id.count("-") + 1
    found = [p for p in runs_root.glob(f"{readable_id}-*") if p.name.count("-") == dashes]
    assert len(found) <= 1, found
    return RunDir(found[0] if found else runs_root / readable_id)


def by_readable_id(frame):
    """A runs or epochs table indexed by the run id without its settings hash."""
    return frame.set_index(frame["run_id"].str.rsplit("-", n=1).str[0])
