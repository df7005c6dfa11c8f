"""``fwbench parity ...``: the fairness layers as pass/fail tables (non-zero exit on a failure)."""

from __future__ import annotations

import typer

app = typer.Typer(help="Prove the two arms compute the same thing.", no_args_is_help=True)


@app.command("models")
def models_cmd(
    num_classes: int = typer.Option(10, "--num-classes", help="Classes of the head."),
    batch: int = typer.Option(2, "--batch", help="Random images per check."),
    seed: int = typer.Option(0, "--seed", help="Seed of the input and the perturbed weights."),
) -> None:
    """Matched models: PyTorch weights -> Keras, same input, eval FP32 logits must agree."""
    from rich.console import Console
    from rich.table import Table

    from fwbench.models import MODELS
    from fwbench.parity.outputs import RELATIVE_TOLERANCE, check_outputs
    from fwbench.stems import INPUT_SIZES

    out = Console()
    table = Table(
        "model", "input", "max |Δ|", "max |logit|", "max |Δ| / max |logit|", "result",
        title=f"matched models: logits after weight transfer (tolerance {RELATIVE_TOLERANCE:g})",
    )  # fmt: skip
    results = []
    for model in MODELS:
        for size in INPUT_SIZES:
            with out.status(f"{model} {size}x{size} ..."):
                r = check_outputs(model, size, num_classes=num_classes, batch=batch, seed=seed)
            results.append(r)
            verdict = "[green]pass[/]" if r.passed else "[red]FAIL[/]"
            table.add_row(
                model, str(size), f"{r.max_abs_diff:.3g}", f"{r.max_abs_logit:.4g}",
                f"{r.relative:.3g}", verdict,
            )  # fmt: skip
    out.print(table)
    if not all(r.passed for r in results):
        raise typer.Exit(1)
