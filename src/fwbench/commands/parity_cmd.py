"""``fwbench parity ...``: the fairness layers as pass/fail tables (non-zero exit on a failure)."""

from __future__ import annotations

import typer

app = typer.Typer(help="Prove the two arms compute the same thing.", no_args_is_help=True)
