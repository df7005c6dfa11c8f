"""``fwbench migrate``: adopt run directories named before run ids carried a settings hash."""

from __future__ import annotations

import typer
from rich.console import Console

from fwbench.commands.options import OptPath, WorkspaceOpt
from fwbench.core.paths import Workspace


def migrate(
    dry_run: bool = typer.Option(False, "--dry-run", help="Only say what would be renamed."),
    workspace: OptPath = WorkspaceOpt,
) -> None:
    """Rename old-style run directories to their settings-hash ids so that stages reuse them."""
    from fwbench.record.migrate import migrate as run_migration

    ws = Workspace.from_env(workspace)
    out = Console(highlight=False, soft_wrap=True)
    moved = run_migration(ws, dry_run=dry_run)
    for old, what in moved:
        out.print(f"{old.path.name}: {what}")
    out.print(f"{len(moved)} old-style run directories in {ws.runs_dir}")
