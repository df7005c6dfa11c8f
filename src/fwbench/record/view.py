"""How far a run has got, in a few words, for ``fwbench run`` and ``fwbench status``.

Read from the run directory only (``epochs.jsonl``, ``status.json``, ``test.json``), so it is the
same for local and Slurm runs; Slurm's own view of a task comes from one ``sacct`` call.
"""

from __future__ import annotations

import json
import subprocess

from fwbench.record.runs import RunDir


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
