"""Atomic writes: nothing a user made is ever left half-written.

Every file or directory is built under a temporary name beside its destination and moved
into place with ``os.replace`` (atomic on POSIX within one file system), so a crash or
Ctrl-C leaves either the old version or the new one, never a torn file.  A full disk is
one line naming the destination (see :mod:`mia.core.base.diskspace`), said once the temporary
copy is gone; ``needed``, where the caller knows it, is checked before anything is written.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from mia.core.base import diskspace


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _umask()


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, needed: int | None = None, what: str = "") -> Iterator[Path]:
    """Yield a temporary file path; on success it replaces ``path``, on error it is removed.

    ``needed`` (about the bytes to be written) and ``what`` (what ``path`` is, e.g.
    ``"checkpoint"``) go into the one-line report of a full disk."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with diskspace.reported(path, needed, what):
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        tmp_path = Path(tmp)
        tmp_path.chmod(0o666 & ~_UMASK)  # mkstemp makes 0600; the result is an ordinary user file
        try:
            yield tmp_path
            try:
                os.replace(tmp_path, path)
            except OSError as exc:  # name the file the user asked for, not our temporary one
                raise OSError(exc.errno, exc.strerror, str(path)) from None
        finally:
            tmp_path.unlink(missing_ok=True)


def write_text(path: str | os.PathLike, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path, len(data)) as tmp:
        tmp.write_bytes(data)


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike, replace: bool = False, needed: int | None = None,
                     what: str = "") -> Iterator[Path]:
    """Yield a temporary directory that becomes ``path`` only if the block succeeds.

    With ``replace=True`` an existing ``path`` is swapped out (old copy removed after the
    new one is in place, so it stays whole whatever happens before); otherwise an existing
    non-empty ``path`` is an error.  ``needed`` and ``what`` as for :func:`atomic_path`.
    """
    path = Path(path)
    if path.exists() and any(path.iterdir()) and not replace:
        raise FileExistsError(f"{path} already exists and is not empty")
    path.parent.mkdir(parents=True, exist_ok=True)
    with diskspace.reported(path, needed, what):
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
        tmp.chmod(0o777 & ~_UMASK)
        try:
            yield tmp
            if path.exists():
                old = path.with_name(f".{path.name}.old-{os.getpid()}")
                os.replace(path, old)
                os.replace(tmp, path)
                shutil.rmtree(old)
            else:
                os.replace(tmp, path)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp)
