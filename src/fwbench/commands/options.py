"""Options shared by several commands."""

from __future__ import annotations

from pathlib import Path

import typer

WorkspaceOpt = typer.Option(
    None,
    "--workspace",
    "-w",
    help="Project folder (default: $FWBENCH_WORKSPACE or the current directory).",
    show_default=False,
)
TrainConfigOpt = typer.Option(
    None, "--config", help="Your train_config.yaml (default: configs/train_config.yaml if present)."
)
MatrixOpt = typer.Option(
    None, "--matrix", help="Your experiment_matrix.yaml (default: configs/ if present)."
)
AnalysisConfigOpt = typer.Option(
    None, "--config", help="Your analysis.yaml (default: configs/analysis.yaml if present)."
)

OptPath = Path | None
