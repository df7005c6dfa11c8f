"""Run directories built to get each verdict, and cells that diverge, in the real contract.

Stage ``vx`` (digits, fp32, seeds 1-5, pytorch and keras), one cell per verdict kind on test
accuracy (keras = pytorch + the seed's offset):
- mobilenetv2: offsets within +-0.04 pp            -> equivalent within +-0.5 pp
- resnet50: offsets -3 pp (+- 0.04 pp)             -> different, beyond the margin
- convnext_tiny: offsets +-1 to 2.5 pp around 0    -> inconclusive
Stage ``vd`` (digits, amp, seeds 1-5): keras runs that diverged or failed are excluded and
counted; a diverged run even carries a ``test.json`` (accuracy 0.10) that must never count.
- mobilenetv2 amp: keras seeds 3, 4 diverged, 5 failed -> 2 pairs: no verdict (min_seeds 3)
- resnet50 amp: keras seed 4 diverged, 5 failed        -> 3 pairs, identical: no test
- convnext_tiny amp: every run done, equal values      -> all seeds identical: no test
"""

from __future__ import annotations

from pathlib import Path

import yaml

from fwbench.config.train import load_train_config
from fwbench.core.fileio import append_jsonl, write_json
from fwbench.record.runs import RunDir, make_spec
from runfixtures import _epoch_records

SEEDS = (1, 2, 3, 4, 5)
BASE = (0.90, 0.93, 0.91, 0.94, 0.92)  # pytorch test accuracy per seed
SMALL = (0.0004, -0.0003, 0.0001, -0.0002, 0.0003)
OFFSETS = {
    "mobilenetv2": SMALL,
    "resnet50": tuple(-0.03 + e for e in SMALL),
    "convnext_tiny": (0.02, -0.015, 0.01, -0.025, 0.012),
}
MODELS = tuple(OFFSETS)
EXPECTED = {
    "mobilenetv2": "equivalent",
    "resnet50": "different, beyond margin",
    "convnext_tiny": "inconclusive",
}
KERAS_AMP = {  # seed -> kind of the keras run in stage vd (pytorch always done)
    "mobilenetv2": {3: "diverged", 4: "diverged", 5: "failed"},
    "resnet50": {4: "diverged", 5: "failed"},
    "convnext_tiny": {},
}
DIVERGED_ERRORS = (
    "train loss 24.1 stays above 3 x chance ln(10) = 6.91 after warmup (epoch 3)",
    "validation loss exploded: 3.2e+08 at epoch 2",
)
STAGES = {
    "vx": {"precisions": ["fp32"]},
    "vd": {"precisions": ["amp"]},
}


def matrix() -> dict:
    """The fixture's experiment matrix (both stages)."""
    common = {
        "datasets": ["digits"],
        "models": list(MODELS),
        "seeds": list(SEEDS),
        "frameworks": ["pytorch", "keras"],
        "epochs_override": 4,
        "subset": 300,
    }
    return {"stages": {name: common | extra for name, extra in STAGES.items()}}


def accuracy(model: str, precision: str, seed: int, framework: str) -> float:
    """The test accuracy the fixture gives a finished run."""
    i = SEEDS.index(seed)
    if precision == "amp" or framework == "pytorch":
        return BASE[i]
    return round(BASE[i] + OFFSETS[model][i], 6)


def _write(root: Path, stage: str, model: str, precision: str, seed: int, fw: str, kind: str):
    spec = make_spec(
        load_train_config(), dataset="digits", model=model, precision=precision, seed=seed,
        framework=fw, epochs_override=4, subset=300, stage=stage,
    )  # fmt: skip
    run = RunDir(root / "runs" / spec.run_id)
    run.write_spec(spec)
    write_json(run.env_path, {"hostname": "node-1", "run": {"device": "cpu"}})
    run.set_status("running")
    acc = accuracy(model, precision, seed, fw) if kind == "done" else 0.10
    seconds = 10.0 + 0.05 * seed
    for record in _epoch_records(acc, seconds, diverge=kind == "diverged"):
        append_jsonl(run.epochs_path, record)
    if kind == "failed":
        run.set_status("failed", error="RuntimeError: out of memory")
        return
    write_json(
        run.test_path,
        {
            "accuracy": acc,
            "macro_f1": acc - 0.01,
            "top5_accuracy": min(1.0, acc + 0.05),
            "per_class_accuracy": [acc - 0.02, acc + 0.02],
            "ece": 0.03 + (0.001 * seed if fw == "keras" else 0.0),
            "loss": 1.0 - acc,
            "confusion_matrix": [[45, 5], [4, 46]],
            "best_epoch": 4,
        },
    )
    if kind == "diverged":
        run.set_status("diverged", error=DIVERGED_ERRORS[seed % 2])
        return
    run.set_status("done")


def build_verdict_workspace(root: Path) -> Path:
    """Write the matrix and every run directory of stages ``vx`` and ``vd`` under ``root``."""
    (root / "configs").mkdir(parents=True, exist_ok=True)
    (root / "configs" / "experiment_matrix.yaml").write_text(yaml.safe_dump(matrix()))
    for model in MODELS:
        for seed in SEEDS:
            for fw in ("pytorch", "keras"):
                _write(root, "vx", model, "fp32", seed, fw, "done")
                kind = KERAS_AMP[model].get(seed, "done") if fw == "keras" else "done"
                _write(root, "vd", model, "amp", seed, fw, kind)
    return root
