"""The ``fwbench`` command line: Typer app, thin by design.

Each area's commands live in ``fwbench/commands/<area>.py``; this module only assembles them and
turns a ``FwbenchError`` into one line on stderr and exit code 2 (no traceback).
"""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from fwbench.commands import (
    analysis_cmd,
    bench_cmd,
    config_cmd,
    data_cmd,
    env_cmd,
    models_cmd,
    parity_cmd,
    plan_cmd,
    run_cmd,
    train_cmd,
)
from fwbench.errors import FwbenchError

app = typer.Typer(
    name="fwbench",
    help="Does training an image classifier in PyTorch or in Keras give a different result, "
    "and at what speed? Evidence from raw data to report.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

app.command("env")(env_cmd.env)
app.command("bench")(bench_cmd.bench)
app.command("train")(train_cmd.train)
app.add_typer(config_cmd.app, name="config")
app.add_typer(data_cmd.app, name="data")
app.add_typer(parity_cmd.app, name="parity")
app.add_typer(models_cmd.app, name="models")
app.command("collect")(analysis_cmd.collect)
app.command("analyze")(analysis_cmd.analyze)
app.command("report")(analysis_cmd.report)
app.command("plan")(plan_cmd.plan)
app.command("run")(run_cmd.run)
app.command("status")(run_cmd.status)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except FwbenchError as e:
        Console(stderr=True, highlight=False, soft_wrap=True).print(
            f"[bold red]error:[/] {e.message}"
        )
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        Console(stderr=True).print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
