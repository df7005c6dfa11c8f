"""Archive extraction that refuses unsafe members (absolute paths, '..', links out, devices)."""

from __future__ import annotations

import tarfile
import zipfile
from pathlib import Path, PurePosixPath

from fwbench.core.errors import FwbenchError


def extract_tar(archive: Path, dest: Path) -> None:
    """Extract a .tar(.gz) into ``dest`` with tarfile's 'data' filter; unsafe members refuse all."""
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with tarfile.open(archive, "r:*") as tf:
            members = tf.getmembers()
            for m in members:  # check every member before writing any
                tarfile.data_filter(m, str(dest))
            tf.extractall(dest, members=members, filter="data")
    except tarfile.FilterError as e:
        raise FwbenchError(
            f"archive has an unsafe member, refusing to extract: {e}",
            path=archive,
            fix="use the official archive; this one may have been tampered with",
        ) from None
    except (tarfile.ReadError, EOFError, OSError) as e:
        raise FwbenchError(
            f"archive is truncated or corrupt ({e})",
            path=archive,
            fix="download it again (or pass --download)",
        ) from None


def extract_zip(archive: Path, dest: Path) -> None:
    """Extract a .zip into ``dest``; absolute paths, '..' and symlinks refuse the whole archive."""
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                name = PurePosixPath(info.filename)
                is_link = (info.external_attr >> 16) & 0o170000 == 0o120000
                if name.is_absolute() or ".." in name.parts or is_link:
                    raise FwbenchError(
                        f"archive has an unsafe member '{info.filename}', refusing to extract",
                        path=archive,
                        fix="use the official archive; this one may have been tampered with",
                    )
            bad = zf.testzip()
            if bad is not None:
                raise zipfile.BadZipFile(f"CRC error in {bad}")
            zf.extractall(dest)
    except (zipfile.BadZipFile, EOFError, OSError) as e:
        raise FwbenchError(
            f"archive is truncated or corrupt ({e})",
            path=archive,
            fix="download it again (or pass --download)",
        ) from None


def extract_folder(archive: Path, dest: Path, folder: str) -> Path:
    """Extract ``archive`` into a staging folder beside ``dest/folder``, then move only
    ``folder`` into place: nothing else in ``dest`` is created or overwritten, whatever the
    archive holds. Returns ``dest/folder``."""
    import shutil
    import tempfile

    target = dest / folder
    if target.exists():
        raise FwbenchError(
            f"{folder} exists but is not a complete dataset folder",
            path=target,
            fix="move it aside (or delete it) and prepare again",
        )
    dest.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder}.extract-", dir=dest))
    try:
        extract = extract_zip if zipfile.is_zipfile(archive) else extract_tar
        extract(archive, staging)
        found = staging / folder
        if not found.is_dir() or found.is_symlink():
            raise FwbenchError(
                f"archive did not contain {folder}/", path=archive, fix="use the official archive"
            )
        found.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
