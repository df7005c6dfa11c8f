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
