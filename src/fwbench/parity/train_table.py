"""``fwbench parity train`` output: the per-step table, the checks table and the CSV files."""

from __future__ import annotations

from pathlib import Path

from fwbench.parity.lockstep import Lockstep


def step_table(result: Lockstep):
    """Per step: each arm's loss, their relative difference and the weight divergences."""
    from rich.table import Table

    table = Table(
        "step", "lr", "loss pytorch", "loss keras", "loss control", "loss rel",
        "‖Δw‖/‖w‖ keras", "‖Δw‖/‖w‖ control", "ratio", "BN var", "head grad",
        title=f"{result.model} on {result.dataset}, {result.dtype}: lockstep "
        "(control = PyTorch, memory layout toggled)",
    )  # fmt: skip
    for r in result.rows:
        table.add_row(
            str(r.step), f"{r.lr:.4g}", f"{r.loss_pytorch:.6f}", f"{r.loss_keras:.6f}",
            f"{r.loss_control:.6f}", f"{r.loss_rel:.2e}", f"{r.weight_div_keras:.2e}",
            f"{r.weight_div_control:.2e}", f"{r.ratio:.2f}", f"{r.bn_var_rel:.2e}",
            f"{r.classifier_grad_rel:.2e}",
        )  # fmt: skip
    return table


def check_table(result: Lockstep):
    """Each assertion with its value, tolerance and verdict."""
    from rich.table import Table

    table = Table("check", "value", "tolerance", "result", "detail", title="lockstep checks")
    for c in result.checks:
        verdict = "[green]pass[/]" if c.passed else "[red]FAIL[/]"
        table.add_row(c.check, f"{c.value:.3g}", f"{c.tolerance:g}", verdict, c.detail)
    return table


def upsert_csv(path: Path, rows: list[dict], key=("model", "dataset", "dtype", "seed")) -> Path:
    """Write ``rows`` into ``path``, replacing earlier rows of the same model/dataset/dtype/seed."""
    import pandas as pd

    from fwbench.core.fileio import write_text

    new = pd.DataFrame(rows)
    if path.is_file():
        old = pd.read_csv(path)
        if set(key) <= set(old.columns):
            mine = old[list(key)].astype(str).apply(tuple, axis=1)
            taken = set(new[list(key)].astype(str).apply(tuple, axis=1))
            new = pd.concat([old[~mine.isin(taken)], new], ignore_index=True)
    return write_text(path, new.to_csv(index=False))
