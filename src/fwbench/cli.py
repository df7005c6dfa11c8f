"""The ``fwbench`` command line: Typer app, thin by design.

Each area's commands live in ``fwbench/commands/<area>.py``; this module only assembles them and
turns a ``FwbenchError`` into one line on stderr and exit code 2 (no traceback). Command modules
import their heavy dependencies (pydantic models, pandas, frameworks) inside the command, so
``fwbench --help`` and ``fwbench status`` start fast (a test holds them to a budget).
"""

from __future__ import annotations

import signal
import sys


def _interrupted_while_starting(signum: int, frame: object) -> None:
    sys.stderr.write("interrupted while starting: nothing was read or written\n")
    sys.exit(130)  # raised inside whatever import was running; SystemExit prints no traceback


# Ctrl-C during the imports below (seconds on a loaded machine) is one line, not a traceback.
signal.signal(signal.SIGINT, _interrupted_while_starting)

import typer  # noqa: E402
from rich.console import Console  # noqa: E402

from fwbench.commands import (  # noqa: E402
    analysis_cmd,
    bench_cmd,
    config_cmd,
    data_cmd,
    env_cmd,
    models_cmd,
    parity_cmd,
    plan_cmd,
    run_cmd,
    runs_cmd,
    smoke_cmd,
    train_cmd,
)
from fwbench.core.errors import FwbenchError, Interrupted, from_os_error  # noqa: E402

app = typer.Typer(
    name="fwbench",
    help="Does training an image classifier in PyTorch or in Keras give a different result, "
    "and at what speed? Evidence from raw data to report.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,  # --install-completion / --show-completion for bash, zsh, fish
)


def _version(value: bool) -> None:
    if value:
        from fwbench import __version__

        print(f"fwbench {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Does training an image classifier in PyTorch or in Keras give a different result, and at
    what speed? Evidence from raw data to report."""


app.command("env")(env_cmd.env)
app.command("bench")(bench_cmd.bench)
app.command("smoke")(smoke_cmd.smoke)
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
app.command("migrate")(runs_cmd.migrate)
app.add_typer(runs_cmd.app, name="runs")


def main() -> None:
    """Console-script entry point: user errors, a full or read-only disk and Ctrl-C are one line."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if any(a in ("--help", "-h") for a in sys.argv[1:]) or len(sys.argv) == 1:
        from fwbench.commands.output import widen_help_off_terminal

        widen_help_off_terminal()
    try:
        app()
    except SystemExit as e:
        if e.code == 130:  # Typer ends a KeyboardInterrupt as a silent exit 130
            _fail(Interrupted(INTERRUPTED))
        raise
    except KeyboardInterrupt:
        _fail(Interrupted(INTERRUPTED))
    except FwbenchError as e:
        _fail(e)
    except OSError as e:
        err = from_os_error(e)
        if err is None:
            raise
        _fail(err)


INTERRUPTED = (
    "stopped by Ctrl-C; every file written so far is complete (writes are atomic) and "
    "running the same command again continues"
)


def _fail(e: FwbenchError) -> None:
    label = "interrupted" if isinstance(e, Interrupted) else "error"
    Console(stderr=True, highlight=False, soft_wrap=True).print(
        f"[bold red]{label}:[/] {e.message}"
    )
    sys.exit(e.exit_code)


if __name__ == "__main__":
    main()
