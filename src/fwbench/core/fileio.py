"""Atomic file writes: a killed process never leaves a half-written file."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from fwbench.core.interrupts import point

_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` on a temp file beside ``path``, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        write(tmp_path)
        point("write")
        os.chmod(tmp_path, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp_path, path)
    except BaseException as e:
        tmp_path.unlink(missing_ok=True)
        _name(e, path)
        raise
    return path


def _name(e: BaseException, path: Path) -> None:
    """An OSError raised by a writer that does not say its file (pandas, pyarrow) names it."""
    if isinstance(e, OSError) and e.filename is None:
        e.filename = str(path)


def check_writable(folder: str | Path) -> Path:
    """Create ``folder`` and a file in it, or raise the OSError a later write would raise.

    Commands that work for a while before writing (``env`` probes frameworks) call it first, so
    a read-only folder is reported at once.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".fwbench-write-check.", dir=folder)
    os.close(fd)
    os.unlink(tmp)
    return folder


class StagedWrites:
    """Write several files side by side, then put all of them in place at once.

    ``add(path, write)`` writes a temp file beside ``path``; ``commit()`` renames every temp file
    into place (renames need no space, so a full disk fails before any target changed). Leaving
    the ``with`` block without ``commit`` removes the temp files and changes nothing.
    """

    def __init__(self) -> None:
        self._staged: list[tuple[Path, Path]] = []

    def add(self, path: str | Path, write: Callable[[Path], None]) -> Path:
        """Stage ``write(tmp)`` for ``path``; return the temp file (``path`` after ``commit``)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        self._staged.append((Path(tmp), path))
        try:
            write(Path(tmp))
        except OSError as e:
            _name(e, path)
            raise
        point("write")
        os.chmod(tmp, 0o666 & ~_UMASK)
        return Path(tmp)

    def commit(self) -> None:
        """Rename every staged file into place."""
        for tmp, path in self._staged:
            os.replace(tmp, path)
        self._staged = []

    def __enter__(self) -> StagedWrites:
        return self

    def __exit__(self, *exc: object) -> None:
        for tmp, _ in self._staged:
            tmp.unlink(missing_ok=True)
        self._staged = []


def write_text(path: str | Path, text: str) -> Path:
    """Atomically write ``text`` to ``path``."""
    return atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))


def write_bytes(path: str | Path, data: bytes) -> Path:
    """Atomically write ``data`` to ``path``."""
    return atomic_write(path, lambda p: p.write_bytes(data))


def write_json(path: str | Path, obj: Any) -> Path:
    """Atomically write ``obj`` as indented JSON."""
    return write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def write_yaml(path: str | Path, obj: Any) -> Path:
    """Atomically write ``obj`` as YAML (keys in the given order)."""
    return write_text(path, yaml.safe_dump(obj, sort_keys=False))


def append_jsonl(path: str | Path, record: dict) -> None:
    """Append one JSON line and fsync it, so a killed run keeps every finished line."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record, default=str) + "\n")
        f.flush()
        os.fsync(f.fileno())


def read_jsonl(path: str | Path) -> list[dict]:
    """Read a JSON-lines file; a torn last line (killed writer) is ignored."""
    path = Path(path)
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return records


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """SHA-256 hex digest of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def md5_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """MD5 hex digest of a file (the checksum the official CIFAR archives publish)."""
    h = hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
