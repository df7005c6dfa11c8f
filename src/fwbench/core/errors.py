"""The one exception type for errors a user can cause (and fix)."""

from __future__ import annotations

import errno
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


class Interrupted(FwbenchError):
    """Ctrl-C (or SIGTERM): the CLI prints what state was left and exits with code 130."""

    exit_code = 130


# OS errors a user fixes (disk full, read-only or protected folder): the CLI turns them into
# one line naming the file, like a FwbenchError. Anything else keeps its traceback.
_OS_FIXES: dict[int, str] = {
    errno.ENOSPC: "free disk space (or point --workspace at a disk with room), then rerun",
    errno.EDQUOT: "free space within your quota, then rerun",
    errno.EROFS: "the file system is read-only: remount it writable or use another --workspace",
    errno.EACCES: "give yourself access to it (read, and write for outputs), or use another "
    "--workspace",
    errno.EPERM: "give yourself access to it (read, and write for outputs), or use another "
    "--workspace",
}


def describe(e: OSError) -> str:
    """``No space left on device (path)``: an OS error in a few words, with its file."""
    text = e.strerror or str(e)
    where = e.filename if e.filename is not None else None
    return f"{text} ({where})" if where else text


def _access(filename: object) -> str:
    """``read`` when ``filename`` is an existing file we may not read, else ``write``."""
    import os

    readable = not isinstance(filename, str | Path) or not os.path.isfile(filename)
    return "write" if readable or os.access(filename, os.R_OK) else "read"


def from_os_error(e: OSError) -> FwbenchError | None:
    """The user error for a full disk or a read-only/protected path, or None for other errors."""
    fix = _OS_FIXES.get(e.errno or 0)
    if fix is None:
        return None
    what = e.strerror or str(e)
    if e.errno == errno.ENOSPC:
        what = f"disk full: {what}"
    elif e.errno in (errno.EACCES, errno.EPERM):  # reading or writing: the error does not say
        what = f"cannot {_access(e.filename)}: {what}"
    else:
        what = f"cannot write: {what}"
    return FwbenchError(
        what + "; files written before are intact (writes are atomic)", path=e.filename, fix=fix
    )
