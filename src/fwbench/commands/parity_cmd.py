"""``fwbench parity ...``: the fairness layers as pass/fail tables (non-zero exit on a failure)."""

from __future__ import annotations

from dataclasses import asdict

import typer

from fwbench.commands.options import MatrixOpt, OptPath, TrainConfigOpt, WorkspaceOpt

app = typer.Typer(help="Prove the two arms compute the same thing.", no_args_is_help=True)


def _save(workspace, name: str, rows: list[dict]) -> None:
    """Write the check's rows to ``results/parity_<name>.csv`` (the report embeds them)."""
    import pandas as pd

    from fwbench.core.fileio import write_text
    from fwbench.core.paths import Workspace

    path = Workspace.from_env(workspace, create=True).results_dir / f"parity_{name}.csv"
    write_text(path, pd.DataFrame(rows).to_csv(index=False))


@app.command("models")
def models_cmd(
    num_classes: int = typer.Option(
        10, "--num-classes", min=2, max=100_000, help="Classes of the head."
    ),
    batch: int = typer.Option(2, "--batch", min=1, max=4096, help="Random images per check."),
    seed: int = typer.Option(
        0, "--seed", min=0, max=2**32 - 1, help="Seed of the input and the perturbed weights."
    ),
    keras_backends: str = typer.Option(
        "keras,keras-jax,keras-torch",
        "--keras-backends",
        help="Keras arms to transfer into (keras-jax/keras-torch: one process each).",
    ),
    workspace: OptPath = WorkspaceOpt,
) -> None:
    """Matched models: PyTorch weights -> every Keras arm, same input, FP32 logits must agree."""
    from rich.console import Console
    from rich.table import Table

    from fwbench.parity.backends import run_in_arm
    from fwbench.parity.outputs import RELATIVE_TOLERANCE, check_outputs
    from fwbench.registry.arms import get_arm
    from fwbench.registry.models import MODELS
    from fwbench.registry.stems import INPUT_SIZES

    out = Console()
    table = Table(
        "arm", "model", "input", "max |Δ|", "max |logit|", "max |Δ| / max |logit|", "result",
        title=f"matched models: logits after weight transfer (tolerance {RELATIVE_TOLERANCE:g})",
    )  # fmt: skip
    options = {"num_classes": num_classes, "batch": batch, "seed": seed}
    rows = []
    for arm in [get_arm(a.strip()).name for a in keras_backends.split(",") if a.strip()]:
        with out.status(f"{arm}: every model and input size ..."):
            if arm == "keras":  # this process (torch is imported first, in one place)
                found = [
                    asdict(check_outputs(m, s, **options)) for m in MODELS for s in INPUT_SIZES
                ]
            else:  # KERAS_BACKEND is per process
                args = {"models": list(MODELS), "sizes": list(INPUT_SIZES), **options}
                found = run_in_arm(arm, "logits", args)["result"]
        for r in found:
            rows.append({"framework": arm, **r})
            verdict = "[green]pass[/]" if r["passed"] else "[red]FAIL[/]"
            table.add_row(
                arm, r["model"], str(r["input_size"]), f"{r['max_abs_diff']:.3g}",
                f"{r['max_abs_logit']:.4g}", f"{r['relative']:.3g}", verdict,
            )  # fmt: skip
    out.print(table)
    _save(workspace, "models", rows)
    if not all(r["passed"] for r in rows):
        raise typer.Exit(1)


@app.command("pixels")
def pixels_cmd(
    dataset: str = typer.Option("synthetic", "--dataset", help="A prepared dataset."),
    split: str = typer.Option("val", "--split", help="train, val or test."),
    index: int = typer.Option(0, "--index", min=0, max=10**9, help="Which image of the split."),
    config: OptPath = TrainConfigOpt,
    workspace: OptPath = WorkspaceOpt,
) -> None:
    """The same image through both input pipelines gives the same tensor (max |Δ| < 1e-5)."""
    from rich.console import Console
    from rich.table import Table

    from fwbench.config.train import workspace_train_config
    from fwbench.core.paths import Workspace
    from fwbench.parity.pixels import TOLERANCE, check_pixels

    ws = Workspace.from_env(workspace, create=True)
    cfg = workspace_train_config(ws, config)
    rows = check_pixels(ws, dataset, cfg, split=split, index=index)
    table = Table(
        "check", "image", "shape", "max |Δ|", "result",
        title=f"{dataset}: PyTorch vs Keras input tensors (tolerance {TOLERANCE:g})",
    )  # fmt: skip
    for r in rows:
        verdict = "[green]pass[/]" if r.passed else "[red]FAIL[/]"
        shape = "×".join(map(str, r.shape))
        table.add_row(r.check, f"{r.split}[{r.index}]", shape, f"{r.max_abs_diff:.3g}", verdict)
    Console().print(table)
    _save(
        workspace, "pixels", [{"dataset": dataset, **asdict(r), "passed": r.passed} for r in rows]
    )
    if not all(r.passed for r in rows):
        raise typer.Exit(1)


@app.command("lr")
def lr_cmd(
    dataset: str = typer.Option("cifar10", "--dataset", help="Dataset whose step plan to use."),
    stage: str | None = typer.Option(
        None, "--stage", help="Check every dataset of this stage with its recipe, subset, epochs."
    ),
    config: OptPath = TrainConfigOpt,
    matrix: OptPath = MatrixOpt,
    subset: int | None = typer.Option(
        None, "--subset", min=1, max=10**9, help="Training images (default: all)."
    ),
    epochs_override: int | None = typer.Option(None, "--epochs-override", min=1, max=100_000),
    keras_backends: str = typer.Option(
        "keras-jax,keras-torch",
        "--keras-backends",
        help="Other Keras arms to check too, each in its own process ('' for none).",
    ),
    workspace: OptPath = WorkspaceOpt,
) -> None:
    """Each arm's own schedule, the LR its optimizer held and the LR it applied (read off the
    update) agree with PyTorch's at every step.
    """
    from rich.console import Console
    from rich.table import Table

    from fwbench.config.experiment_matrix import EXPERIMENT_MATRIX, load_matrix
    from fwbench.config.train import find_user_config, workspace_train_config
    from fwbench.core.paths import Workspace
    from fwbench.parity.lr import (
        RELATIVE_TOLERANCE,
        arm_lrs,
        check_lr,
        lr_cases,
    )
    from fwbench.registry.arms import get_arm

    ws = Workspace.from_env(workspace, create=True)
    cfg = workspace_train_config(ws, config)
    stages = None
    if stage is not None:
        stages = load_matrix(find_user_config(ws.configs_dir, EXPERIMENT_MATRIX, matrix))
    out = Console()
    arms = [get_arm(a.strip()).name for a in keras_backends.split(",") if a.strip()]
    arms = [a for a in arms if a not in ("keras", "pytorch")]
    rows = []
    for case in lr_cases(cfg, dataset, stages, stage, subset, epochs_override):
        plan = case.plan
        with out.status(
            f"{case.dataset}: stepping every arm's optimizer through {plan.total_steps:,} steps"
        ):
            r = check_lr(case)
            others = [arm_lrs(a, case, list(r.schedule)) for a in arms]
        table = Table(
            "quantity", "value", title=f"{case.dataset}: LR per optimizer step, every arm"
        )
        table.add_row("optimizer steps", f"{plan.total_steps:,} ({plan.steps_per_epoch}/epoch)")
        table.add_row("warmup steps", str(plan.warmup_steps))
        for step in sorted({0, plan.warmup_steps, plan.total_steps // 2, plan.total_steps - 1}):
            table.add_row(
                f"lr at step {step}", f"pytorch {r.pytorch[step]:.10g}  keras {r.keras[step]:.10g}"
            )
        table.add_row("max rel |pytorch - keras|", f"{r.max_relative_diff:.3g}")
        table.add_row("max rel |arm - schedule|", f"{r.max_relative_diff_to_schedule:.3g}")
        table.add_row(
            "max rel |applied (read off the update) - schedule|",
            f"{r.max_relative_diff_applied:.3g} (tolerance {r.applied_tolerance:.3g})",
        )
        verdict = "[green]pass[/]" if r.passed else "[red]FAIL[/]"
        table.add_row(f"result (tolerance {RELATIVE_TOLERANCE:g})", verdict)
        for o in others:
            table.add_row(
                f"{o.arm} ({o.dtype} LR): max rel |arm - schedule|",
                f"{o.max_relative_diff_to_schedule:.3g} (tolerance {o.tolerance:.3g}); applied "
                f"{o.max_relative_diff_applied:.3g}; float32 "
                f"LR applied {'identical' if o.applied_equal else 'DIFFERENT'}: "
                + ("[green]pass[/]" if o.passed else "[red]FAIL[/]"),
            )
        out.print(table)
        common = {"dataset": case.dataset, "optimizer_steps": plan.total_steps,
                  "warmup_steps": plan.warmup_steps}  # fmt: skip
        rows.append({
            **common, "max_rel_diff_between_arms": r.max_relative_diff,
            "max_rel_diff_to_schedule": r.max_relative_diff_to_schedule,
            "max_rel_diff_applied": r.max_relative_diff_applied,
            "tolerance": RELATIVE_TOLERANCE, "passed": r.passed,
        })  # fmt: skip
        rows += [{
            **common, "arm": o.arm, "lr_dtype": o.dtype,
            "max_rel_diff_to_schedule": o.max_relative_diff_to_schedule,
            "max_rel_diff_applied": o.max_relative_diff_applied,
            "float32_lr_identical": o.applied_equal, "tolerance": o.tolerance, "passed": o.passed,
        } for o in others]  # fmt: skip
    _save(workspace, "lr", rows)
    if not all(row["passed"] for row in rows):
        raise typer.Exit(1)


def _installed_keras_arms() -> list[str]:
    """The Keras arms whose backend package is installed (without importing it)."""
    from importlib.util import find_spec

    from fwbench.registry.arms import ARMS, KERAS_ARMS

    return [a for a in KERAS_ARMS if find_spec(ARMS[a].keras_backend) is not None]


def _lockstep_in_arm(ws, cfg, arm: str, **kwargs):
    """The lockstep run against Keras arm ``arm``: keras-tf here, the others in their process."""
    from fwbench.parity.lockstep import Lockstep, run_lockstep

    if arm == "keras":  # this process (torch is imported first, in one place)
        return run_lockstep(ws, cfg, framework=arm, **kwargs)
    from fwbench.parity.backends import run_in_arm

    args = {"workspace": str(ws.root), "train_config": cfg.model_dump(mode="json"),
            "framework": arm, **kwargs}  # fmt: skip
    return Lockstep.from_json(run_in_arm(arm, "train", args)["result"])


@app.command("train")
def train_cmd(
    model: str = typer.Option("mobilenetv2", "--model", help="mobilenetv2, resnet50, ..."),
    dataset: str = typer.Option("digits", "--dataset", help="A prepared dataset."),
    steps: int = typer.Option(10, "--steps", min=3, max=100_000, help="Lockstep optimizer steps."),
    dtype: str = typer.Option("float32", "--dtype", help="float32 or float64 (fp32 only)."),
    precision: str = typer.Option("fp32", "--precision", help="fp32 or amp (bfloat16 on a CPU)."),
    compile_mode: str = typer.Option("eager", "--compile", help="eager or compiled."),
    frameworks: str = typer.Option(
        "",
        "--framework",
        help="Keras arms to train beside PyTorch, comma-separated: keras-tf, keras-jax, "
        "keras-torch (default: every installed one; each but keras-tf in its own process).",
    ),  # fmt: skip
    batch_size: int = typer.Option(32, "--batch-size", min=2, max=65536, help="Images per step."),
    seed: int = typer.Option(
        42, "--seed", min=0, max=2**32 - 1, help="Run seed (init, order, augmentation)."
    ),
    config: OptPath = TrainConfigOpt,
    workspace: OptPath = WorkspaceOpt,
) -> None:
    """PyTorch and each Keras arm train in lockstep from one start; they must agree, follow the
    same schedule and SGD rule, then diverge no more than the instability floor (PyTorch vs
    PyTorch with its memory layout toggled).
    """
    from rich.console import Console

    from fwbench.config.train import workspace_train_config
    from fwbench.core.errors import FwbenchError
    from fwbench.core.paths import Workspace
    from fwbench.parity.train_table import check_table, step_table, upsert_csv
    from fwbench.registry.arms import COMPILE_MODES, get_arm
    from fwbench.registry.models import PRECISIONS, check_choice, get_model

    get_model(model)
    check_choice("dtype", dtype, ("float32", "float64"))
    check_choice("precision", precision, PRECISIONS)
    check_choice("compile mode", compile_mode, COMPILE_MODES)
    if dtype == "float64" and precision != "fp32":
        raise FwbenchError("--dtype float64 runs in fp32 only", fix="drop --precision amp")
    arms = [get_arm(a.strip()).name for a in frameworks.split(",") if a.strip()]
    if dtype == "float64" and "keras-jax" in arms:
        raise FwbenchError(
            "keras-jax has no float64 (JAX needs jax_enable_x64 for the whole process)",
            fix="run --dtype float64 with --framework keras-tf or keras-torch",
        )
    arms = arms or [a for a in _installed_keras_arms() if dtype != "float64" or a != "keras-jax"]
    if not arms or "pytorch" in arms:
        raise FwbenchError(
            "parity train needs Keras arms to train beside PyTorch",
            fix="pass --framework keras-tf, keras-jax or keras-torch (and install its backend)",
        )
    ws = Workspace.from_env(workspace, create=True)
    cfg = workspace_train_config(ws, config)
    out = Console(width=max(Console().width, 160))
    options = {
        "dataset": dataset,
        "model": model,
        "steps": steps,
        "dtype": dtype,
        "seed": seed,
        "batch_size": batch_size,
        "precision": precision,
        "compile_mode": compile_mode,
    }
    passed = True
    for arm in arms:
        with out.status(f"{model}: pytorch vs {arm}, {steps} lockstep steps ({precision}) ..."):
            try:
                result = _lockstep_in_arm(ws, cfg, arm, **options)
            except StopIteration:
                raise FwbenchError(
                    f"{dataset} has fewer than {steps} steps of {batch_size} images in one epoch",
                    fix="use fewer --steps or a smaller --batch-size",
                ) from None
        out.print(step_table(result))
        out.print(check_table(result))
        upsert_csv(ws.results_dir / "parity_train.csv", result.check_rows())
        upsert_csv(ws.results_dir / "parity_train_steps.csv", result.step_rows())
        passed &= result.passed
    if not passed:
        raise typer.Exit(1)
