"""One run, or two side by side, as text: what ``fwbench runs show`` and ``runs compare`` print.

Everything comes from the run directory (``spec.json``, ``epochs.jsonl``, ``test.json``,
``status.json``), so a run started by ``train``, ``run --set`` or a stage reads the same.
"""

from __future__ import annotations

import json
from typing import Any

from fwbench.study.matrix import error_line
from fwbench.study.runindex import Found, flat_settings

# test.json key -> how the line names it
TEST_METRICS: dict[str, str] = {
    "accuracy": "test top-1",
    "top5_accuracy": "test top-5",
    "macro_f1": "test macro-F1",
    "ece": "test ECE",
    "loss": "test loss",
    "best_epoch": "best epoch",
    "best_val_accuracy": "best val acc",
}
# epochs.jsonl field -> column heading of the epoch table
CURVES: dict[str, str] = {
    "train_loss": "train loss",
    "train_accuracy": "train acc",
    "val_loss": "val loss",
    "val_accuracy": "val acc",
    "learning_rate": "lr",
    "images_per_second": "img/s",
}


def _num(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "-" if value is None else str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.0f}" if abs(value) >= 100 else f"{value:.4g}"
    return str(value)


def table(rows: list[list[str]]) -> list[str]:
    """Rows of cells as left-aligned columns (the first row is the heading)."""
    if not rows:
        return []
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def show(run: Found) -> list[str]:
    """The run's identity, settings, epochs, test metrics and where its files are."""
    rd, spec = run.run_dir, run.spec
    state = run.state
    lines = [f"run       {run.run_id}", f"state     {state}"]
    if state in ("failed", "diverged", "corrupt"):
        lines.append(f"why       {error_line(rd)}")
    if spec is None:
        return [*lines, f"dir       {rd.path}"]
    lines += [
        f"settings  {run.label or '(as configured)'}",
        f"stage     {spec.stage or '(fwbench train)'}",
        f"spec      {spec.dataset} {spec.model} {spec.precision} seed {spec.seed} "
        f"{spec.framework} {spec.variant} {spec.compile}; {spec.epochs} epochs, "
        f"input {spec.input_size}, subset {spec.subset or 'all'}",
    ]
    t, lr = spec.train_config.training, spec.train_config.lr
    lines.append(
        f"train     batch {t.batch_size} x{t.gradient_accumulation_steps}, "
        f"{spec.train_config.optimizer.name}, base LR {lr.base_lr}, warmup {lr.warmup_epochs} ep"
    )
    if spec.overrides:
        lines.append(f"overrides {' '.join(spec.overrides)}")
    epochs = rd.epochs()
    if epochs:
        lines += ["", *curves([("", epochs)])]
    test = rd.test_metrics()
    if test:
        lines += [""] + [
            f"{name:<13} {_num(test[k])}" for k, name in TEST_METRICS.items() if k in test
        ]
    lines += ["", f"dir       {rd.path}", f"log       {rd.log_path}", f"epochs    {rd.epochs_path}"]
    for name, path in (("test", rd.test_path), ("tb", rd.path / "tb"), ("ckpts", rd.checkpoints)):
        if path.exists():
            lines.append(f"{name:<9} {path}")
    tracking = rd.path / "tracking.json"
    if tracking.is_file():
        known = json.loads(tracking.read_text(encoding="utf-8") or "{}")
        lines.append(f"mlflow    run {known.get('mlflow_run_id')} at {known.get('mlflow_uri')}")
    return lines


def curves(runs: list[tuple[str, list[dict]]]) -> list[str]:
    """Epoch tables side by side: one row per epoch, each curve once per run (``A val acc``)."""
    by_epoch = [{int(r.get("epoch", 0)): r for r in records} for _, records in runs]
    epochs = sorted({e for table_ in by_epoch for e in table_})
    heading = ["epoch"] + [f"{who}{name}".strip() for name in CURVES.values() for who, _ in runs]
    rows = [heading]
    for epoch in epochs:
        row = [str(epoch)]
        for field in CURVES:
            row += [_num(t.get(epoch, {}).get(field)) for t in by_epoch]
        rows.append(row)
    return table(rows)


def compare(a: Found, b: Found) -> list[str]:
    """Settings that differ, test metrics with their difference, and the curves side by side."""
    lines = [f"A  {a.name}  ({a.state})", f"B  {b.name}  ({b.state})", ""]
    if a.spec is None or b.spec is None:
        return [*lines, "a run's spec.json is unreadable: nothing to compare"]
    sa, sb = flat_settings(a.spec), flat_settings(b.spec)
    diff = [
        [k, _num(sa.get(k)), _num(sb.get(k))] for k in sorted({*sa, *sb}) if sa.get(k) != sb.get(k)
    ]
    lines += ["settings that differ:" if diff else "settings: identical"]
    lines += table([["key", "A", "B"], *diff]) if diff else []
    ta, tb = a.run_dir.test_metrics() or {}, b.run_dir.test_metrics() or {}
    rows = [["metric", "A", "B", "B - A"]]
    for key, name in TEST_METRICS.items():
        va, vb = ta.get(key), tb.get(key)
        if va is None and vb is None:
            continue
        both = isinstance(va, int | float) and isinstance(vb, int | float)
        rows.append([name, _num(va), _num(vb), f"{vb - va:+.4g}" if both else "-"])
    lines += ["", *(table(rows) if len(rows) > 1 else ["test metrics: none yet"])]
    ea, eb = a.run_dir.epochs(), b.run_dir.epochs()
    if ea or eb:
        lines += ["", *curves([("A ", ea), ("B ", eb)])]
    return lines
