"""How far a run has got, in a few words, for ``fwbench run`` and ``fwbench status``.

Read from the run directory only (``epochs.jsonl``, ``status.json``, ``test.json``), so it is the
same for local and Slurm runs; Slurm's own view of a task comes from one ``sacct`` call.
"""

from __future__ import annotations

import json
import subprocess

from fwbench.record.runs import RunDir, RunSpec


def last_epoch(run_dir: RunDir) -> dict | None:
    """The last line of ``epochs.jsonl`` (read from the end: the file can be long), or None."""
    try:
        with open(run_dir.epochs_path, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 4096))
            lines = f.read().decode(errors="replace").strip().splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        try:
            return json.loads(line)
        except json.JSONDecodeError:
            continue
    return None


def progress_words(run_dir: RunDir, state: str, epochs: int) -> str:
    """``epoch 3/10, val acc 0.6123`` for a run under way; ``test acc 0.9120`` for a done one."""
    if state == "done":
        test = run_dir.test_metrics() or {}
        return f"test acc {test['accuracy']:.4f}" if "accuracy" in test else ""
    record = last_epoch(run_dir)
    if record is None:
        return f"epoch 0/{epochs}" if state in ("running", "interrupted") else ""
    words = f"epoch {record.get('epoch', 0)}/{epochs}"
    if isinstance(record.get("val_accuracy"), int | float):
        words += f", val acc {record['val_accuracy']:.4f}"
    return words


def _query(command: list[str]) -> str:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def slurm_states(job_ids: list[str]) -> dict[str, str]:
    """``{job id: Slurm state}``: ``squeue`` for queued and running tasks (accounting can lag a
    fresh submission), ``sacct`` for ended ones; empty when Slurm does not answer."""
    ids = sorted({j for j in job_ids if j})
    if not ids:
        return {}
    states: dict[str, str] = {}
    sacct = ["sacct", "-n", "-P", "-X", "-o", "JobID,State", "-j", ",".join(ids)]
    for out in (_query(sacct), _query(["squeue", "-h", "-r", "-o", "%i|%T"])):
        for line in out.splitlines():
            job, _, state = line.strip().partition("|")
            if job in ids and state:
                states[job] = state.split()[0]
    return states


def _id_parts(spec: RunSpec) -> list[str]:
    """The pieces of a readable run id, one per axis ("" where the axis is at its default)."""
    return [
        spec.dataset,
        spec.model,
        spec.precision,
        f"s{spec.seed}",
        spec.framework,
        "" if spec.variant == "library" else spec.variant,
        spec.perturbation or "",
        "compiled" if spec.compile == "compiled" else "",
    ]


def short_names(runs: list[tuple[RunSpec, str]]) -> dict[str, str]:
    """``{run id: short name}`` for runs shown side by side: only the id pieces that differ
    between them (``s1-pytorch``), then the settings label (``s1-pytorch lr.base_lr=0.2``)."""
    parts = {spec.run_id: _id_parts(spec) for spec, _ in runs}
    width = len(_id_parts(runs[0][0])) if runs else 0
    varying = [i for i in range(width) if len({p[i] for p in parts.values()}) > 1] or [4]
    names = {}
    for spec, label in runs:
        short = "-".join(parts[spec.run_id][i] for i in varying if parts[spec.run_id][i])
        names[spec.run_id] = f"{short} {label}" if label else short
    return names


class EpochFeed:
    """The epoch records a run has added to ``epochs.jsonl`` since the last look (cheap to
    poll: the file is read again only when it has grown)."""

    def __init__(self, run_dir: RunDir):
        self.run_dir = run_dir
        self.size = self._size()
        self.seen = len(run_dir.epochs()) if self.size else 0

    def _size(self) -> int:
        try:
            return self.run_dir.epochs_path.stat().st_size
        except OSError:
            return 0

    def new(self) -> list[dict]:
        size = self._size()
        if size == self.size:
            return []
        self.size = size
        records = self.run_dir.epochs()
        fresh, self.seen = records[self.seen :], len(records)
        return fresh


def warmup_as_long_as_training(root, runs) -> int:
    """How many of ``runs`` (a runs table: ``run_dir`` relative to ``root``) warmed the LR up for
    their whole training (``env.json``: ``warmup_steps >= total_steps``): the peak never came."""
    from pathlib import Path

    count = 0
    for rel in runs["run_dir"].dropna():
        try:
            facts = json.loads((Path(root) / rel / "env.json").read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        run = facts.get("run") if isinstance(facts, dict) else None
        warm, total = (run or {}).get("warmup_steps"), (run or {}).get("total_steps")
        if isinstance(warm, int) and isinstance(total, int) and 0 < total <= warm:
            count += 1
    return count
