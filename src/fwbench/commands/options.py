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
# One name per file: --train-config and --analysis-config. `--config` is the old name of either,
# kept working (deprecated) so that existing scripts do not break.
TrainConfigOpt = typer.Option(
    None,
    "--train-config",
    "--config",
    help="Your train_config.yaml (default: configs/train_config.yaml if present; "
    "--config: deprecated name).",
)
MatrixOpt = typer.Option(
    None, "--matrix", help="Your experiment_matrix.yaml (default: configs/ if present)."
)
AnalysisConfigOpt = typer.Option(
    None,
    "--analysis-config",
    "--config",
    help="Your analysis.yaml (default: configs/analysis.yaml if present; "
    "--config: deprecated name).",
)

OptPath = Path | None

# --- train-config overrides (train and run): validated like train_config.yaml
# (fwbench.config.overrides)
SetOpt = typer.Option(
    None,
    "--set",
    help="Override a train-config key, e.g. --set lr.base_lr=0.05 (repeatable).",
    show_default=False,
)
BatchSizeOpt = typer.Option(
    None, "--batch-size", min=1, max=10**9, help="= --set training.batch_size=N (not both)."
)
LrOpt = typer.Option(None, "--lr", help="= --set lr.base_lr=X (not both).")
TrackingOpt = typer.Option(
    None, "--tracking", help="Also log to: mlflow, or none (TensorBoard files are always written)."
)
TrackingUriOpt = typer.Option(
    None, "--tracking-uri", help="MLflow server or store URI (default: sqlite in mlruns/)."
)


def tracking_sets(tracking: str | None, uri: str | None) -> list[str]:
    """``--tracking`` / ``--tracking-uri`` as ``--set`` strings (outside the settings hash)."""
    sets = [] if tracking is None else [f"tracking={tracking}"]
    if uri is not None:
        sets.append(f"tracking_uri={uri}")
        if tracking is None:
            sets.append("tracking=mlflow")
    return sets
