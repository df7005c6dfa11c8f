"""Adopt run directories named before run ids carried a settings hash.

An old id is ``<dataset>-<model>-<precision>-s<seed>-<framework>[-<variant>]``; today's adds
``-<hash>``. A directory whose name is not its own spec's run id is *legacy*: ``fwbench migrate``
renames it to that id when the name is free (its numbers are then reused by every stage with
the same settings), and reports it otherwise. Nothing is deleted.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fwbench.core.errors import FwbenchError
from fwbench.core.paths import Workspace
from fwbench.record.runs import RunDir


@dataclass(frozen=True)
class Legacy:
    """One legacy run directory and the id its settings give it today."""

    path: Path
    run_id: str

    @property
    def target(self) -> Path:
        return self.path.parent / self.run_id


def legacy_runs(ws: Workspace) -> list[Legacy]:
    """Run directories under ``runs/`` whose name is not their spec's run id (sorted)."""
    if not ws.runs_dir.is_dir():
        return []
    found = []
    for path in sorted(p for p in ws.runs_dir.iterdir() if (p / "spec.json").is_file()):
        try:
            spec = RunDir(path).read_spec()
        except (FwbenchError, ValueError):  # unreadable spec: corrupt, reported elsewhere
            continue
        if spec.config_hash and path.name != spec.run_id:
            found.append(Legacy(path, spec.run_id))
    return found


def migrate(ws: Workspace, dry_run: bool = False) -> list[tuple[Legacy, str]]:
    """Rename every legacy run directory to its run id; ``(legacy, what happened)`` for each."""
    done = []
    for old in legacy_runs(ws):
        if old.target.exists():
            done.append((old, f"kept: {old.target.name} exists already"))
        elif dry_run:
            done.append((old, f"would rename to {old.target.name}"))
        else:
            old.path.rename(old.target)
            done.append((old, f"renamed to {old.target.name}"))
    return done


def legacy_notice(ws: Workspace) -> str | None:
    """One line for ``run``/``status`` when legacy run directories exist, else None."""
    n = len(legacy_runs(ws))
    if not n:
        return None
    return (
        f"{n} run directories have ids from before settings hashes and are not used; "
        "`fwbench migrate` renames them so they are reused"
    )
