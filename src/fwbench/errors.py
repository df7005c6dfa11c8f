"""The one exception type for errors a user can cause (and fix)."""

from __future__ import annotations

from pathlib import Path


class FwbenchError(Exception):
    """An error the user caused: says what went wrong, where, and how to fix it.

    The CLI prints it as one line and exits with code 2, without a traceback.
    Programming errors are ordinary exceptions and keep their tracebacks.
    """

    exit_code = 2

    def __init__(self, what: str, *, path: str | Path | None = None, fix: str | None = None):
        self.what = what
        self.path = None if path is None else str(path)
        self.fix = fix
        super().__init__(self.message)

    @property
    def message(self) -> str:
        text = self.what
        if self.path:
            text += f" ({self.path})"
        if self.fix:
            text += f". Fix: {self.fix}"
        return text
