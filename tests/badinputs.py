"""Helpers for the bad-input and fault tests: file hashes, one-line errors, small mounts."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import pickle
import subprocess
from pathlib import Path

import pytest


def tree_hashes(root: Path) -> dict[str, str]:
    """``{relative path: sha256}`` of every file under ``root`` (nothing may change)."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def assert_one_line(result, code: int, *needles: str) -> str:
    """``result`` exited ``code`` with its error in one line (the last on stderr) holding every
    needle, and no traceback. (Lines before it are the command's own progress notes.)"""
    text = result.err + result.out
    assert result.code == code, text
    assert "Traceback" not in text, text
    lines = [ln for ln in result.err.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith(("error:", "interrupted"))]
    assert len(errors) == 1 and errors[0] == lines[-1], result.err
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


def rewrite_pickle(path: Path, change) -> None:
    """Load a CIFAR pickle, let ``change(d)`` return the new object, write it back."""
    with open(path, "rb") as f:
        d = pickle.load(f, encoding="bytes")
    with open(path, "wb") as f:
        pickle.dump(change(d), f, protocol=2)


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True)


@contextlib.contextmanager
def read_only(path: Path):
    """``path`` bind-mounted read-only over itself (root ignores permission bits)."""
    try:
        _mount("--bind", str(path), str(path))
    except (OSError, subprocess.CalledProcessError) as e:
        pytest.skip(f"cannot bind-mount here (needs root and mount rights): {e}")
    try:
        _mount("-o", "remount,ro,bind", str(path))
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=False, capture_output=True)


@contextlib.contextmanager
def small_disk(path: Path, size: str):
    """A size-limited tmpfs at ``path`` (a real full disk for ENOSPC)."""
    path.mkdir(parents=True, exist_ok=True)
    try:
        _mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path))
    except (OSError, subprocess.CalledProcessError) as e:
        pytest.skip(f"cannot mount a tmpfs here (needs root and mount rights): {e}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False, capture_output=True)


def fill_disk(path: Path) -> Path:
    """Fill the file system holding ``path`` until ENOSPC; return the filler file."""
    filler = path / "filler.bin"
    with open(filler, "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError as e:
            assert e.errno == errno.ENOSPC
    with contextlib.suppress(OSError), open(filler, "ab") as f:  # the last partial block
        while True:
            f.write(b"\0" * 512)
            f.flush()
    os.sync()
    return filler
