"""The ``fwbench`` command line: Typer app, thin by design.

Each area's commands live in ``fwbench/commands/<area>.py``; this module only assembles them and
turns a ``FwbenchError`` into one line on stderr and exit code 2 (no traceback). Command modules
import their heavy dependencies (pydantic models, pandas, frameworks) inside the command, so
``fwbench --help`` and ``fwbench status`` start fast (a test holds them to a budget).
"""

from __future__ import annotations

import sys

from fwbench.core import interrupts

# Ctrl-C or SIGTERM during the imports below (seconds on a loaded machine): one line, 130/143.
interrupts.starting()

import typer  # noqa: E402

try:  # Typer >= 0.25 carries its own copy of click
    from typer._click import exceptions as click_errors  # noqa: E402
except ImportError:  # pragma: no cover
    from click import exceptions as click_errors  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.markup import escape  # noqa: E402

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
    status_cmd,
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
app.command("status")(status_cmd.status)
app.command("migrate")(runs_cmd.migrate)
app.add_typer(runs_cmd.app, name="runs")


def main() -> None:
    """Console-script entry point: user errors, usage errors, a full or read-only disk, Ctrl-C and
    SIGTERM are one line; the exit code is 2 (user error) or 128 + the signal (130, 143)."""
    try:
        code = _outcome(_command())
    except KeyboardInterrupt:  # the signal landed as the command ended, before its outcome
        code = _fail(_interrupted())
    except BaseException:
        interrupts.finishing(1)  # a programming error: its traceback, exit 1
        raise
    sys.exit(interrupts.finishing(code))


def _command() -> object:
    """Run the command: its return value, or the exception that ended it."""
    try:
        interrupts.running()
        if any(a in ("--help", "-h") for a in sys.argv[1:]) or len(sys.argv) == 1:
            from fwbench.commands.output import widen_help_off_terminal

            widen_help_off_terminal()
        rv = app(standalone_mode=False, prog_name="fwbench")
    except BaseException as e:
        interrupts.settled()
        return e
    interrupts.settled()
    return rv


def _outcome(result: object) -> int:
    """The exit code of the command's result, a failure printed as one line."""
    if isinstance(result, KeyboardInterrupt | typer.Abort):
        return _fail(_interrupted())
    if isinstance(result, click_errors.NoArgsIsHelpError):
        result.show()  # `fwbench` alone (or a group alone): its help
        return result.exit_code
    if isinstance(result, click_errors.ClickException):
        return _fail(usage_error(result))
    if isinstance(result, FwbenchError):
        return _fail(result)
    if isinstance(result, OSError) and from_os_error(result) is not None:
        return _fail(from_os_error(result))
    if isinstance(result, SystemExit):
        return result.code if isinstance(result.code, int) else (0 if result.code is None else 1)
    if isinstance(result, BaseException):
        raise result
    if result == 130:  # Typer turns a KeyboardInterrupt into Exit(130): the command was stopped
        return _fail(_interrupted())
    return result if isinstance(result, int) and not isinstance(result, bool) else 0


def _interrupted() -> Interrupted:
    return Interrupted(
        f"stopped by {interrupts.name()}; every file written so far is complete (writes are "
        "atomic) and running the same command again continues"
    )


def usage_error(e: click_errors.ClickException) -> FwbenchError:
    """A usage error (bad option value, unknown option, missing argument) as one line."""
    ctx = getattr(e, "ctx", None)
    command = ctx.command_path if ctx is not None else "fwbench"
    what = " ".join(e.format_message().split()).rstrip(".")
    err = FwbenchError(what, fix=f"see `{command} --help`")
    err.exit_code = e.exit_code
    return err


def _fail(e: FwbenchError) -> int:
    label = "interrupted" if isinstance(e, Interrupted) else "error"
    Console(stderr=True, highlight=False, soft_wrap=True).print(
        f"[bold red]{label}:[/] {escape(e.message)}"
    )
    return interrupts.exit_code() if isinstance(e, Interrupted) else e.exit_code


if __name__ == "__main__":
    main()
