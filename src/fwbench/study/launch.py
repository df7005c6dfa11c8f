"""Launching a stage's runs: their directories written, the executor chosen, notes to show.

What ``fwbench run`` does between planning a stage (``study/matrix.py``) and handing the runs
to an executor (``study/executors/``), kept out of the command so the command only parses.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from pydantic import ValidationError
from rich.console import Console

from fwbench.config.executor import SlurmExecutorConfig
from fwbench.core.errors import FwbenchError, describe
from fwbench.core.paths import Workspace
from fwbench.record.check import corruption, quarantine
from fwbench.study.executors.interface import Executor, Outcome, train_command
from fwbench.study.matrix import PlannedRun


def prepare_run_dirs(
    launch: list[PlannedRun], out: Console
) -> tuple[list[PlannedRun], list[Outcome]]:
    """Write each run's spec (repairing corrupt runs first); a run that cannot be written fails
    alone, the others go on."""
    ready, unwritable = [], []
    for r in launch:
        try:
            damage = corruption(r.run_dir)
            if damage:
                where = quarantine(r.run_dir, r.spec, damage)
                out.print(f"repairing corrupt {r.run_id}: {damage} (damaged files kept in {where})")
            r.run_dir.write_spec(r.spec)
        except OSError as e:
            unwritable.append(Outcome(r.run_id, "failed", f"cannot write the run: {describe(e)}"))
            continue
        ready.append(r)
    return ready, unwritable


def make_executor(kind: str, ws: Workspace, cfg: Any, out: Console, **options: Any) -> Executor:
    """The ``local`` or ``slurm`` executor for ``ws``, from the executor config and the
    command line's ``parallel``, ``detach`` and ``slurm`` (updates) options."""
    command_for = partial(train_command, workspace=ws.root)
    if kind == "local":
        from fwbench.study.executors.local import LocalExecutor

        parallel = options["parallel"] or cfg.local.parallel
        return LocalExecutor(parallel, command_for=command_for, console=out)
    from fwbench.study.executors.slurm import SlurmExecutor

    slurm = slurm_config(cfg.slurm, options["slurm"])
    return SlurmExecutor(
        slurm,
        ws.logs_dir / "slurm",
        command_for=command_for,
        console=out,
        detach=options["detach"],
    )


def slurm_config(base: SlurmExecutorConfig, updates: dict[str, Any]) -> SlurmExecutorConfig:
    """``base`` with the command line's Slurm options (None: keep) applied and checked."""
    data = base.model_dump() | {k: v for k, v in updates.items() if v is not None}
    try:
        return SlurmExecutorConfig.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        raise FwbenchError(
            f"invalid slurm option '{'.'.join(map(str, err['loc']))}': {err['msg']}",
            fix="check the --partition/--time-min/--mem-gb/--cpus/--gpus values",
        ) from None


def notices(ws: Workspace, runs: list[PlannedRun]) -> list[str]:
    """One-line notes: old-style run directories; batches fitted to a small --subset."""
    from fwbench.config.overrides import FITTED, fit_notice
    from fwbench.record.migrate import legacy_notice

    notice = legacy_notice(ws)
    fitted = {s for r in runs for s in r.spec.overrides if FITTED in s}
    return [f"note: {notice}"] * bool(notice) + sorted(fit_notice(s) for s in fitted)
