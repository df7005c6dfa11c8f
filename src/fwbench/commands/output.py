"""Tables printed whole: on a terminal long words fold instead of ending in ``…``; off a terminal
(pipes, Slurm logs, CI) the console widens to the table's natural width instead of cutting it.

Rich assumes 80 columns when stdout is not a terminal and cuts every cell that does not fit
(``inconclu…``, ``2,236…``); a log is read later, at any width, so nothing may be lost there.
"""

from __future__ import annotations

import sys

from rich.console import Console
from rich.table import Table

WIDEST = 1000  # a bound for measuring, far beyond any table of ours
HELP_WIDTH = 160  # help off a terminal: room for option names and type columns


def print_whole(out: Console, table: Table) -> None:
    """Print ``table`` with every cell whole (folded on a terminal, widened off one)."""
    for column in table.columns:
        column.overflow = "fold"
    if out.is_terminal:
        out.print(table)
        return
    natural = out.measure(table, options=out.options.update(width=WIDEST)).maximum
    width = out.width
    out.width = max(width, natural)
    try:
        out.print(table)
    finally:
        out.width = width


def widen_help_off_terminal() -> None:
    """Give ``--help`` room when it goes to a pipe or a file (typer's tables cut long words)."""
    import typer.rich_utils as rich_utils

    if rich_utils.MAX_WIDTH is None and not sys.stdout.isatty():
        rich_utils.MAX_WIDTH = HELP_WIDTH
