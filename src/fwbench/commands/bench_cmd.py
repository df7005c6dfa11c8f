"""``fwbench bench``: throughput of each arm's bare loop, fwbench's step and its input pipeline."""

from __future__ import annotations

import typer

from fwbench.commands.options import OptPath, TrainConfigOpt, WorkspaceOpt

MODES_HELP = "bare,harness,harness+pipeline,pipeline"


def _split(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _ints(text: str, flag: str) -> list[int]:
    from fwbench.core.errors import FwbenchError

    try:
        return [int(t) for t in _split(text)]
    except ValueError:
        raise FwbenchError(f"{flag} takes whole numbers, not '{text}'", fix=f"{flag} 64") from None


def _rules(text: str) -> tuple[bool, ...]:
    from fwbench.core.errors import FwbenchError

    words = {"on": True, "off": False, "true": True, "false": False}
    try:
        return tuple(dict.fromkeys(words[t.lower()] for t in _split(text)))
    except KeyError:
        raise FwbenchError(
            f"--deterministic takes on, off or on,off, not '{text}'", fix="--deterministic on,off"
        ) from None


def bench(
    frameworks: str = typer.Option(
        "pytorch,keras",
        "--frameworks",
        help="Comma-separated arms: pytorch, keras (= keras-tf), keras-jax, keras-torch.",
    ),
    models: str = typer.Option("mobilenetv2", "--models", help="Comma-separated model names."),
    precisions: str = typer.Option("fp32", "--precisions", help="fp32 and/or amp."),
    batch_sizes: str = typer.Option("64", "--batch-sizes", help="Comma-separated batch sizes."),
    input_size: int = typer.Option(
        None,
        "--img-size",
        "--input-size",
        min=8,
        max=8192,
        help="Input size (default: the dataset's).",
    ),
    num_classes: int = typer.Option(
        None, "--num-classes", min=2, max=100_000, help="Classes (default: dataset's)."
    ),
    dataset: str = typer.Option(
        "digits", "--dataset", help="Prepared dataset the pipeline modes read."
    ),
    modes: str = typer.Option(MODES_HELP, "--modes", help="Which of " + MODES_HELP + "."),
    steps: int = typer.Option(20, "--steps", min=1, max=100_000, help="Timed steps per repeat."),
    warmup: int = typer.Option(
        3, "--warmup", min=0, max=100_000, help="Untimed steps before each repeat."
    ),
    repeats: int = typer.Option(
        5, "--repeats", min=1, max=1000, help="Timed windows per mode (median, min, max)."
    ),
    variant: str = typer.Option("library", "--variant", help="library or matched models."),
    num_workers: int = typer.Option(
        None,
        "--num-workers",
        min=0,
        max=4096,
        help="PyTorch loader workers (default: 0 on <= 4 CPUs, else CPUs/2 up to the config's).",
    ),
    threads: int = typer.Option(
        None,
        "--threads",
        min=1,
        max=4096,
        help="Intra-op threads (default: $FWBENCH_THREADS or usable CPUs).",
    ),
    tf32: bool = typer.Option(False, "--tf32/--no-tf32", help="TF32 matmuls/convs in both arms."),
    channels_last: bool = typer.Option(
        True, "--channels-last/--no-channels-last", help="PyTorch NHWC memory (Keras is NHWC)."
    ),
    compile_modes: str = typer.Option(
        "eager",
        "--compile",
        help="Execution modes, comma-separated: eager and/or compiled (torch.compile, XLA "
        "jit_compile, jax.jit; keras-jax is compiled in both).",
    ),
    deterministic: str = typer.Option(
        None,
        "--deterministic",
        help="on, off or on,off (both, every arm under each); default: the train config's "
        "training.deterministic. Each arm applies it by its own mechanism.",
    ),
    config: OptPath = TrainConfigOpt,
    workspace: OptPath = WorkspaceOpt,
) -> None:
    """Images/s of bare loop, fwbench's step, step + pipeline, pipeline -> results/bench.csv.

    One framework process per (arm, execution mode, model, precision, batch size); the first
    warm-up's compilation time is reported apart from the throughput (``compile_s``).
    """
    from dataclasses import replace

    from rich.console import Console

    from fwbench.bench.measure import default_settings
    from fwbench.bench.run import CSV_NAME, plan_jobs, run_bench
    from fwbench.config.train import TRAIN_CONFIG, find_user_config, load_train_config
    from fwbench.core.paths import Workspace
    from fwbench.core.threads import thread_count

    ws = Workspace.from_env(workspace, create=True)
    user_config = find_user_config(ws.configs_dir, TRAIN_CONFIG, config)
    cfg = load_train_config(user_config)
    n_threads = threads or thread_count()
    rules = _rules(deterministic) if deterministic else (cfg.training.deterministic,)
    settings = default_settings(n_threads, cfg.training.num_workers, rules[0])
    settings = replace(
        settings,
        tf32=tf32,
        channels_last=channels_last,
        num_workers=settings.num_workers if num_workers is None else num_workers,
    )
    jobs = plan_jobs(
        ws,
        frameworks=_split(frameworks),
        models=_split(models),
        precisions=_split(precisions),
        batch_sizes=_ints(batch_sizes, "--batch-sizes"),
        dataset=dataset,
        modes=_split(modes),
        settings=settings,
        input_size=input_size,
        num_classes=num_classes,
        warmup=warmup,
        steps=steps,
        repeats=repeats,
        variant=variant,
        train_config=user_config,
        dataset_size=cfg.input_size.get(dataset),
        compile_modes=tuple(_split(compile_modes)),
        determinism=rules,
    )
    out = Console()
    out.print(f"settings (every arm): {settings}")
    with out.status("benchmarking ...") as status:

        def on_job(job) -> None:
            status.update(
                f"{job.framework} {job.compile} {job.model} {job.precision} b{job.batch_size} "
                f"({job.repeats} x {job.steps} steps per mode) ..."
            )

        rows = run_bench(ws, jobs, on_job=on_job)
    out.print(bench_table(rows))
    out.print(f"appended {len(rows)} rows to {ws.results_dir / CSV_NAME}")


def bench_table(rows: list[dict]):
    """The rows as a rich table: median images/s [min-max], step and data ms, paired ratios.

    The ratio is the mode's images/s over its reference mode's (harness/bare = b/a,
    pipeline/harness = d/b), median over repeats of the back-to-back pairs.
    """
    from rich.table import Table

    table = Table(
        "arm", "execution", "model", "prec", "batch", "determ.", "mode", "images/s [min-max]",
        "step ms", "data ms", "ratio", "compile s", title="fwbench bench (median over repeats)",
    )  # fmt: skip
    for row in rows:
        ratio = row["ratio_to_ref"]
        table.add_row(
            row["framework"], f"{row['compile']}: {row['execution']}", row["model"],
            row["precision"], str(row["batch_size"]), "on" if row["deterministic"] else "off",
            row["mode"],
            f"{row['samples_per_sec']:.1f} [{row['samples_per_sec_min']:.1f}-"
            f"{row['samples_per_sec_max']:.1f}]",
            f"{row['step_ms']:.1f}", f"{row['data_ms']:.2f}",
            "" if ratio is None else f"{ratio:.3f} x {row['ref_mode']}",
            f"{row['compile_s']:.1f}",
        )  # fmt: skip
    return table
