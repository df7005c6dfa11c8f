"""``fwbench models compare|audit``: how alike the two arms' models are (seed phase 3)."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from fwbench.commands.options import OptPath, WorkspaceOpt
from fwbench.commands.output import print_whole
from fwbench.core.fileio import write_text
from fwbench.core.paths import Workspace
from fwbench.registry.models import MODELS, VARIANTS, check_choice
from fwbench.registry.stems import INPUT_SIZES

app = typer.Typer(
    help="Build the models in both frameworks and compare them.", no_args_is_help=True
)

VariantOpt = typer.Option("library", "--variant", help=f"One of: {', '.join(VARIANTS)}.")


def _pass(ok: bool) -> str:
    return "[green]pass[/]" if ok else "[red]FAIL[/]"


KerasBackendsOpt = typer.Option(
    "keras-jax,keras-torch",
    "--keras-backends",
    help="Other Keras arms to check too, each in its own process ('' for none).",
)


def _arms(text: str) -> list[str]:
    from fwbench.registry.arms import get_arm

    return [get_arm(a.strip()).name for a in text.split(",") if a.strip()]


@app.command("compare")
def compare_cmd(
    variant: str = VariantOpt,
    keras_backends: str = KerasBackendsOpt,
    workspace: OptPath = WorkspaceOpt,
) -> None:
    """Parameter counts (18 rows) and forward shapes, every arm -> results/param_comparison.csv.

    The Keras count is TensorFlow's; each other Keras backend must count exactly the same.
    """
    import pandas as pd

    from fwbench.parity.params import add_keras_backends, compare_all

    check_choice("variant", variant, VARIANTS)
    arms = [a for a in _arms(keras_backends) if a != "keras"]
    ws = Workspace.from_env(workspace, create=True)
    out = Console()
    with out.status("building models ...") as status:
        rows = compare_all(variant, progress=lambda text: status.update(f"building {text} ..."))
        status.update(f"building them on {', '.join(arms)} (one process each) ...")
        rows = add_keras_backends(rows, arms)
    others = [f"{a} trainable" for a in arms]
    table = Table(
        "model", "input", "classes", "PyTorch trainable", "Keras trainable", *others, "diff %",
        "threshold %", "params", "shapes", title=f"parameters and shapes ({variant})",
    )  # fmt: skip
    for r in rows:
        extra = [f"{getattr(r, a.replace('-', '_') + '_trainable_params'):,}" for a in arms]
        table.add_row(
            r.model, str(r.input_size), str(r.num_classes), f"{r.pytorch_trainable_params:,}",
            f"{r.keras_trainable_params:,}", *extra, f"{r.diff_pct:.6f}", f"{r.threshold_pct:g}",
            _pass(r.params_passed and r.backends_passed), _pass(r.shapes_passed),
        )  # fmt: skip
    print_whole(out, table)
    path = ws.results_dir / "param_comparison.csv"
    write_text(path, pd.DataFrame([r.as_row() for r in rows]).to_csv(index=False))
    out.print(f"wrote {path}")
    if not all(r.passed for r in rows):
        raise typer.Exit(1)


@app.command("audit")
def audit_cmd(
    input_size: int = typer.Option(32, "--input-size", help=f"One of: {INPUT_SIZES}."),
    variant: str = VariantOpt,
    workspace: OptPath = WorkspaceOpt,
) -> None:
    """Every way the two arms' builds differ -> results/model_audit.csv and .md."""
    from fwbench.parity.audit import audit_model, write_audit
    from fwbench.registry.stems import stem_for

    check_choice("variant", variant, VARIANTS)
    stem_for(next(iter(MODELS)), input_size)  # a user error for an unsupported size
    ws = Workspace.from_env(workspace, create=True)
    out = Console()
    rows = []
    for model in MODELS:
        with out.status(f"building {model} ..."):
            mine = audit_model(model, input_size, variant=variant)
        rows += mine
        table = Table("aspect", "PyTorch", "Keras", "differs", title=f"{model} ({variant})")
        for r in mine:
            table.add_row(r.aspect, r.pytorch, r.keras, "[yellow]yes[/]" if r.differs else "no")
        out.print(table)
    csv, md = write_audit(rows, ws.results_dir)
    out.print(f"wrote {csv} and {md}")
