"""Report sections read from the workspace: environment, configs, coverage, fairness, limitations.

Each function returns Markdown. Files that other commands produce are embedded when present;
when absent, the section says which command produces them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from fwbench.analysis.overlaps import load_text, overlapping_runs
from fwbench.analysis.replicates import CELL, finished
from fwbench.analysis.stats import Analysis
from fwbench.analysis.verdicts import NO_VERDICT
from fwbench.config.train import load_train_config
from fwbench.core.paths import Workspace
from fwbench.record.runs import RunDir
from fwbench.record.view import warmup_as_long_as_training

FAIRNESS_FILES = {
    "param_comparison.csv": ("Parameter counts per framework", "fwbench models compare"),
    "model_audit.csv": ("Audit of remaining model differences", "fwbench models audit"),
}
PARITY_COMMAND = "fwbench parity (pixels, lr, models)"
PASS_COLUMNS = ("pass", "passed", "ok", "status", "result")


def md_table(frame: pd.DataFrame, empty: str = "_(no rows)_") -> str:
    """A Markdown table whose cells cannot break the table (pipes escaped, newlines joined)."""
    if frame.empty:
        return empty
    clean = frame.copy()
    for col in clean.columns:
        if clean[col].dtype == object or str(clean[col].dtype) == "string":
            clean[col] = clean[col].map(
                lambda v: v if not isinstance(v, str) else v.replace("|", "\\|").replace("\n", " ")
            )
    return clean.to_markdown(index=False)


def _code(text: str, lang: str = "") -> str:
    return f"```{lang}\n{text.rstrip()}\n```"


def environment(ws: Workspace, runs: pd.DataFrame) -> str:
    """Where the study ran: the workspace's environment capture and each run's host/device."""
    parts = []
    env_json, env_txt = ws.root / "env.json", ws.root / "environment.txt"
    if env_json.is_file():
        info = json.loads(env_json.read_text(encoding="utf-8"))
        facts = {k: info.get(k) for k in ("captured_at", "hostname", "python", "platform")}
        facts["cpu"] = f"{info.get('cpu_model')} ({info.get('cpu_cores')} cores)"
        for name, pkg in (info.get("packages") or {}).items():
            if pkg:
                facts[name] = pkg
        for name, fw in (info.get("frameworks") or {}).items():
            if isinstance(fw, dict):
                shown = {k: v for k, v in fw.items() if k != "error" and not isinstance(v, dict)}
                err = fw.get("error", "")
                facts[f"{name} (probe)"] = (
                    f"not usable: {err.splitlines()[-1] if err else ''}"
                    if "error" in fw
                    else ", ".join(f"{k}={v}" for k, v in shown.items())
                )
        smi = info.get("nvidia_smi") or {}
        facts["nvidia-smi"] = "available" if smi.get("available") else "unavailable"
        table = pd.DataFrame({"item": list(facts), "value": [str(v) for v in facts.values()]})
        parts.append(f"From `{env_json.name}` (written by `fwbench env`):\n\n{md_table(table)}")
    elif env_txt.is_file():
        lines = env_txt.read_text(encoding="utf-8", errors="replace").splitlines()
        parts.append(f"From `{env_txt.name}`:\n\n" + _code("\n".join(lines[:80])))
    else:
        parts.append("No environment capture in this workspace: run `fwbench env` to record it.")
    hosts = runs[runs["host"].notna()]
    if len(hosts):
        cols = ["host", "cpu_model", "device", "amp_dtype", "framework"]
        per = hosts[cols].astype("string").fillna("-").value_counts().rename("runs").reset_index()
        parts.append(
            "Hosts and devices the runs recorded (`env.json` of each run):\n\n" + md_table(per)
        )
    return "\n\n".join(parts)


def train_configs(ws: Workspace, runs: pd.DataFrame) -> str:
    """Each distinct resolved train config the runs used (from their ``spec.json``)."""
    seen: dict[str, list[str]] = {}
    for rel in runs.loc[runs["state"] != "corrupt", "run_dir"].dropna():
        run = RunDir(ws.root / rel)
        if not run.spec_path.is_file():
            continue
        config = run.read_spec().train_config.model_dump(mode="json")
        text = yaml.safe_dump(config, sort_keys=False)
        seen.setdefault(text, []).append(run.run_id)
    settings = runs.groupby(["stage", "dataset"], dropna=False)[["epochs", "input_size", "subset"]]
    run_settings = settings.agg(lambda s: ", ".join(sorted({str(v) for v in s}))).reset_index()
    parts = [
        "Run settings per stage and dataset (from the run specs and the matrix):\n\n"
        + md_table(run_settings)
    ]
    if not seen:
        parts.append(
            "No run directory holds a spec yet; the matrix defaults apply (`fwbench config show`)."
        )
    for i, (text, ids) in enumerate(seen.items(), start=1):
        title = f"Resolved train config {i} of {len(seen)}, used by {len(ids)} run(s)"
        parts.append(f"{title}:\n\n" + _code(text, "yaml"))
    return "\n\n".join(parts)


def coverage(analysis: Analysis, runs: pd.DataFrame) -> str:
    """Runs per stage in each state, and every run that did not finish, with its error."""
    parts = [md_table(analysis.coverage)]
    bad = runs[runs["state"].isin(["failed", "diverged", "corrupt"])]
    if len(bad):
        why = bad["error"].where(bad["state"] != "corrupt", bad["note"])
        shown = bad[["run_id", "state"]].assign(error=why.fillna("-"))
        shown = shown.assign(error=shown["error"].astype(str).str.slice(0, 160))
        parts.append(
            "Runs that failed, diverged or are corrupt (left out of every test):\n\n"
            + md_table(shown)
        )
    waiting = runs[runs["state"].isin(["pending", "running", "interrupted"])]
    if len(waiting):
        pairs = zip(waiting["run_id"], waiting["state"], strict=True)
        ids = ", ".join(f"`{run_id}` ({state})" for run_id, state in pairs)
        parts.append(f"Not finished yet ({len(waiting)}): {ids}.")
    return "\n\n".join(parts)


def _pass_summary(frame: pd.DataFrame) -> str:
    col = next((c for c in frame.columns if str(c).lower() in PASS_COLUMNS), None)
    if col is None:
        return ""
    values = frame[col].astype(str).str.lower()
    passed = values.isin(["true", "pass", "passed", "ok", "1"]).sum()
    failed = values.isin(["false", "fail", "failed", "0"]).sum()
    verdict = "**all pass**" if failed == 0 else f"**{failed} FAIL**"
    return f"{verdict}: {passed} pass, {failed} fail (column `{col}`)."


def _json_tables(data: Any) -> list[pd.DataFrame]:
    if isinstance(data, list) and data and all(isinstance(r, dict) for r in data):
        return [pd.json_normalize(data)]
    if isinstance(data, dict):
        nested = [v for v in data.values() if isinstance(v, list) and v]
        if nested and all(isinstance(r, dict) for v in nested for r in v):
            return [pd.json_normalize(v) for v in nested]
        return [pd.json_normalize(data)]
    return []


def _embed(path: Path) -> str:
    if path.suffix == ".csv":
        frames = [pd.read_csv(path)]
    else:
        frames = _json_tables(json.loads(path.read_text(encoding="utf-8")))
        if not frames:
            return _code(path.read_text(encoding="utf-8")[:4000], "json")
    return "\n\n".join(s for f in frames for s in (_pass_summary(f), md_table(f)) if s)


def fairness(ws: Workspace) -> str:
    """The fairness evidence other commands wrote to ``results/``, or which command makes it."""
    parts = []
    for name, (title, command) in FAIRNESS_FILES.items():
        path = ws.results_dir / name
        if path.is_file():
            parts.append(f"### {title} (`results/{name}`)\n\n{_embed(path)}")
        else:
            parts.append(f"### {title}\n\nNot found: `results/{name}` is produced by `{command}`.")
    parity = sorted(ws.results_dir.glob("parity_*.csv")) + sorted(
        ws.results_dir.glob("parity_*.json")
    )
    if parity:
        for path in parity:
            parts.append(f"### Parity check `results/{path.name}`\n\n{_embed(path)}")
    else:
        parts.append(
            f"### Parity checks\n\nNo `results/parity_*.csv|json` found: they are "
            f"produced by `{PARITY_COMMAND}`."
        )
    return "\n\n".join(parts)


def limitations(ws: Workspace, runs: pd.DataFrame, analysis: Analysis) -> list[str]:
    """What limits the conclusions, derived from the results themselves."""
    notes = []
    done = finished(runs)
    comp = analysis.comparison
    most = int(comp["n_pairs"].max()) if not comp.empty else 0
    if most:
        notes.append(
            f"Few replicates: at most {most} seed pair(s) per cell; with {most} pairs the "
            f"smallest two-sided Wilcoxon p is {2.0 ** (1 - most):.3g}. An inconclusive "
            "verdict is not evidence of equality: the seeds table says how many seeds would "
            "decide."
        )
    if not comp.empty:
        acc = comp[comp["metric"] == "test_accuracy"]
        n = int((acc["verdict"] == NO_VERDICT).sum())
        if n:
            notes.append(
                f"{n} of {len(acc)} cell comparison(s) have no verdict: fewer than "
                f"{analysis.config.min_seeds} seed pairs finished in both arms."
            )
    missing = runs[runs["state"] != "done"]
    if len(missing):
        counts = missing["state"].value_counts().to_dict()
        text = ", ".join(f"{v} {k}" for k, v in counts.items())
        notes.append(
            f"Incomplete matrix: {len(missing)} of {len(runs)} runs are not done ({text}); "
            "failed and diverged runs are excluded from the statistics, which may bias "
            "them toward runs that trained well."
        )
    devices = set(runs["device"].dropna().str.lower())
    if not devices or all("cpu" in d for d in devices):
        notes.append(
            "Trained on CPU (no GPU device recorded): timings and the AMP effect do not "
            "transfer to GPUs."
        )
    subsets = sorted({int(s) for s in runs["subset"].dropna()})
    if subsets:
        notes.append(
            f"Training used a subset of {', '.join(map(str, subsets))} images per run, "
            "not the full training split."
        )
    eval_subsets = sorted({int(s) for s in runs["eval_subset"].dropna()})
    if eval_subsets:
        notes.append(
            f"Validation and test used a subset of {', '.join(map(str, eval_subsets))} images "
            "per run (--eval-subset), not the whole sets: test scores are noisier."
        )
    defaults = load_train_config().epochs
    short = runs[
        [e < defaults.get(d, 0) for d, e in zip(runs["dataset"], runs["epochs"], strict=True)]
    ]
    if len(short):
        pairs = sorted(
            {
                f"{d}: {e} (recipe {defaults[d]})"
                for d, e in zip(short["dataset"], short["epochs"], strict=True)
            }
        )
        notes.append(
            f"Short schedules: epochs below the recipe's ({'; '.join(pairs)}); "
            "accuracies are far from converged values."
        )
    warm = warmup_as_long_as_training(ws.root, done)
    if warm:
        notes.append(
            f"In {warm} run(s) the LR warmup lasted the whole training: the peak LR was never "
            "reached (lower lr.warmup_epochs or train more epochs)."
        )
    mixed = runs.groupby([*CELL, "framework"])[["epochs", "subset", "input_size"]].nunique()
    if (mixed > 1).any(axis=None):
        notes.append("Some cells mix runs with different epochs, subset or input size.")
    shared = runs[overlapping_runs(runs).fillna(0) > 0]
    if len(shared):
        notes.append(
            f"{len(shared)} of {len(runs)} runs ran at the same time as another run on their "
            "host (e.g. `fwbench run --parallel 2`): their epoch time and throughput are left "
            "out of the speed verdicts; run speed stages with `--parallel 1` to time them."
        )
    load = load_text(runs)
    if load:
        notes.append(f"Machine load while the runs trained: {load}.")
    if runs["host"].dropna().nunique() > 1:
        notes.append(f"Runs ran on {runs['host'].nunique()} hosts: compare times with care.")
    if not (ws.results_dir / "param_comparison.csv").is_file():
        notes.append("Fairness evidence incomplete: no parameter comparison in results/.")
    single = int((done["epochs_done"] == 1).sum())
    notes.append(
        "Epoch time and throughput exclude each run's first epoch (warm-up, tracing, "
        "compilation)"
        + (
            f", except in {single} run(s) with a single epoch, whose timing includes warm-up."
            if single
            else "."
        )
    )
    return notes
