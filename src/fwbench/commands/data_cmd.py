"""``fwbench data prepare``: official dataset files -> prepared arrays, splits, stats."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from fwbench.commands.options import OptPath, WorkspaceOpt
from fwbench.core.errors import FwbenchError
from fwbench.core.paths import Workspace
from fwbench.registry.datasets import DATASETS

app = typer.Typer(
    help="Prepare datasets: splits (seed 42) and train-only statistics.", no_args_is_help=True
)


def _read_checksums(path: Path | None) -> dict[str, str] | None:
    if path is None:
        return None
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, ValueError) as e:  # ValueError: not JSON, or not UTF-8
        raise FwbenchError(
            f"cannot read checksums file ({e})", path=path, fix='write {"file name": "md5", ...}'
        ) from None
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise FwbenchError("checksums file must map file names to MD5 strings", path=path)
    return data


@app.command("prepare")
def prepare_cmd(
    datasets: list[str] = typer.Argument(..., help=f"One or more of: {', '.join(DATASETS)}."),
    source: OptPath = typer.Option(
        None, "--source", help="Folder or archive with the official files (default: data/)."
    ),
    download: bool = typer.Option(False, "--download", help="Fetch official archives if absent."),
    checksums: OptPath = typer.Option(
        None, "--checksums", help="JSON {file name: md5} replacing the official MD5s (mirrors)."
    ),
    partial: bool = typer.Option(
        False, "--partial", help="Accept a source smaller than the official set (a subset)."
    ),
    force: bool = typer.Option(False, "--force", help="Redo even if outputs are up to date."),
    workspace: OptPath = WorkspaceOpt,
) -> None:
    """Read each dataset, split it (stratified, seed 42), compute train-only stats, validate."""
    ws = Workspace.from_env(workspace, create=True)
    from fwbench.data.prepare import prepare  # numpy/scikit-learn: only when preparing

    sums = _read_checksums(checksums)
    out = Console()
    failed = False
    for name in datasets:
        if name not in DATASETS:
            raise FwbenchError(
                f"unknown dataset '{name}'; known: {', '.join(DATASETS)}",
                fix="use one of the known dataset names",
            )
        with out.status(f"preparing {name} ..."):
            result = prepare(
                ws,
                name,
                source=source,
                download=download,
                checksums=sums,
                partial=partial,
                force=force,
            )
        if result.up_to_date:
            s = result.manifest["sizes"]
            out.print(
                f"{name}: up to date, nothing to do "
                f"(train/val/test = {s['train']:,} / {s['val']:,} / {s['test']:,})"
            )
            continue
        table = Table("check", "result", "detail", title=f"{name}: validations")
        for c in result.checks:
            table.add_row(c.name, "[green]pass[/]" if c.passed else "[red]FAIL[/]", c.detail)
        out.print(table)
        out.print(f"wrote {ws.prepared_dir / name}, {ws.splits_dir / name}, {ws.stats_file}")
        failed |= not result.ok
    if failed:
        raise typer.Exit(1)
