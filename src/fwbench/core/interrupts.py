"""Ctrl-C (SIGINT) and SIGTERM end every ``fwbench`` command the same way, whenever they land:
one line on stderr starting ``interrupted``, exit code 128 + the signal (130, 143).

A command process goes through four phases, each with its own handler:

- ``starting`` (the CLI's imports): nothing was read or written yet, so the handler prints its
  line and ends the process at once (``os._exit``; no import can swallow it).
- ``running`` (the command): the first signal raises :class:`Stopped` (a ``KeyboardInterrupt``)
  where the command is, so its cleanup runs (``train`` marks the run ``interrupted``); later
  signals are only recorded, so that cleanup is not cut short.
- ``finishing`` (the outcome is known, Python tears down): signals are recorded; the last
  ``atexit`` hook (registered first) reports one and ends the process with 128 + signal before
  Python restores the default handlers, which would kill it silently by the signal.

Only the process's entry (the console script, ``python -m fwbench.cli``) installs these; a
program that calls ``fwbench.cli.main`` in-process keeps its own handlers.

``FWBENCH_TEST_SIGNAL=<point>:<SIGNAME>`` makes the process send itself that signal when it
reaches ``<point>`` (``import``, ``command``, ``write``, ``epoch``, ``finish``, ``exit``), and
``FWBENCH_TEST_POINTS=<file>`` appends each point reached to ``<file>``: the tests interrupt at
the points the command reports instead of guessing with sleeps.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import sys

SIGNALS = (signal.SIGINT, signal.SIGTERM)
_NAMES = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}

_phase = "inactive"  # inactive | starting | running | stopping | finishing
_received: int | None = None  # the first signal that stopped (or will stop) the command
_exit_code = 0
_test_point, _, _test_signal = os.environ.get("FWBENCH_TEST_SIGNAL", "").partition(":")
_points_file = os.environ.get("FWBENCH_TEST_POINTS")


class Stopped(KeyboardInterrupt):
    """The command was stopped by ``signum`` (raised where the command was)."""

    def __init__(self, signum: int = signal.SIGINT):
        super().__init__(signum)
        self.signum = signum


def exit_code() -> int:
    """128 + the signal that stopped the command (130 when none was recorded: a plain Ctrl-C)."""
    return 128 + (_received or signal.SIGINT)


def name() -> str:
    """``Ctrl-C`` or ``SIGTERM``: what stopped the command, in words."""
    return _NAMES.get(_received or signal.SIGINT, f"signal {_received}")


def _line(text: str) -> None:
    try:
        sys.stderr.write(f"interrupted: {text}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass  # stderr closed: the exit code still says it


def _handle(signum: int, frame: object) -> None:
    global _received, _phase
    if _phase == "starting":
        _received = signum
        _line(f"stopped by {name()} while starting: nothing was read or written")
        os._exit(exit_code())
    if _phase == "running":
        _received, _phase = signum, "stopping"
        raise Stopped(signum)
    if _received is None:  # stopping or finishing: remember it, let the cleanup finish
        _received = signum


def raise_stopped(signum: int, frame: object = None) -> None:
    """A handler that raises :class:`Stopped` for ``signum`` and records it (executors)."""
    global _received
    _received = _received or signum
    raise Stopped(signum)


def is_entry() -> bool:
    """Whether this process was started as ``fwbench`` (console script or ``-m fwbench.cli``)."""
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if spec is not None and spec.name == "fwbench.cli":
        return True
    return os.path.basename(getattr(main, "__file__", "") or "") == "fwbench"


def starting() -> None:
    """Called first by the CLI module: a signal during the imports is one line and the exit."""
    global _phase
    if _phase != "inactive" or not is_entry():
        return
    _phase = "starting"
    for s in SIGNALS:
        signal.signal(s, _handle)
    atexit.register(_at_exit)  # registered first, so it runs last
    point("import")


def running() -> None:
    """The command starts: the first signal raises :class:`Stopped` where it is."""
    global _phase
    if _phase == "inactive":  # in-process use (tests, a notebook): the caller's handlers stay
        return
    _phase = "running" if _received is None else "stopping"
    for s in SIGNALS:
        signal.signal(s, _handle)
    point("command")


def settled() -> None:
    """The command has ended (its outcome is being printed): signals are only recorded now."""
    global _phase
    if _phase == "running":
        _phase = "stopping"


def finishing(code: int) -> int:
    """The command's outcome is ``code``; from now on a signal is reported at exit."""
    global _phase, _exit_code
    if _phase == "inactive":
        return code
    _phase, _exit_code = "finishing", code
    point("finish")
    return code


def _at_exit() -> None:
    if _phase != "finishing":  # ended without reaching main's end (an import error): as is
        return
    point("exit")
    with contextlib.suppress(AttributeError, OSError):
        signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    pending = set(signal.sigpending()) & set(SIGNALS) if hasattr(signal, "sigpending") else set()
    if _received is None and pending:
        _handle(min(pending), None)
    code = _exit_code
    if _received is not None and code == 0:  # it had finished: say that its work is whole
        _line(f"stopped by {name()} while exiting; the command had completed its work")
        code = exit_code()
    # (a command that failed keeps its one error line and its code)
    # Past this point Python restores the default handlers, and a signal would kill the process
    # without a line: end it here, with its outcome (files were closed by the command).
    os._exit(code)


def point(where: str) -> None:
    """A named point of the command's life (tests interrupt here; see the module doc)."""
    if _points_file:
        with open(_points_file, "a", encoding="utf-8") as f:
            f.write(where + "\n")
    if _test_point == where and _test_signal:
        os.kill(os.getpid(), getattr(signal, _test_signal))
