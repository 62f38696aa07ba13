"""A full disk is one line: the folder, the space the write needs and the space free.

Running out of space otherwise shows up in forms no user can act on: an ``OSError``
(ENOSPC) naming a temporary file; a ``RuntimeError`` from a C++ writer (``torch.save`` to
a path says only "unexpected pos"); or, worst, SIGBUS from a memory-mapped file, whose
blocks the file system allocates only when a page is first written, which kills the
process with no message and no clean-up.  So mia's writers hand C++ libraries a Python
file or serialise to memory (ENOSPC is then the error, or its ``__context__``), a large
write is checked against the free space before it starts (:func:`check_space`), a
memory-mapped file reserves its blocks before it is mapped (:func:`reserve`), and every
atomic write (:mod:`mia.core.base.atomic`) runs inside :func:`reported`, which turns a full
disk into one :class:`DiskFull` line once the temporary files are removed, so that the
free space it states is what the user has (less any memory map the failed write still
holds, whose blocks return when the process ends).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from pathlib import Path
from typing import Iterator

from mia.core.base.errors import MiaError

#: out of space and out of quota: the same remedy
FULL = (errno.ENOSPC, errno.EDQUOT)


class DiskFull(MiaError):
    """A write did not fit; the message names the folder and both sizes."""


def describe_size(count: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count / 1e3:.1f} kB"


def free_bytes(folder: str | os.PathLike) -> int:
    """Space this user may write in ``folder`` or, for a folder not made yet, its nearest parent."""
    folder = Path(folder).absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return shutil.disk_usage(folder).free


def no_space(target: Path, needed: int | None, what: str = "") -> DiskFull:
    """``no space left in FOLDER for WHAT TARGET: it needs about N, M are free``."""
    named = f"{what} {target}" if what else str(target)
    need = f"it needs about {describe_size(needed)}, " if needed is not None else "only "
    return DiskFull(f"no space left in {target.parent} for {named}: {need}{describe_size(free_bytes(target.parent))} "
                    "are free")


def check_space(target: str | os.PathLike, needed: int, what: str = "") -> None:
    """Refuse a write of about ``needed`` bytes into ``target``'s folder before it starts."""
    target = Path(target)
    if free_bytes(target.parent) < needed:
        raise no_space(target, needed, what)


def is_full(exc: BaseException) -> bool:
    """Whether ``exc``, or an error it was raised from or while handling, is a full disk."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, DiskFull) or (isinstance(exc, OSError) and exc.errno in FULL):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


@contextlib.contextmanager
def reported(target: str | os.PathLike, needed: int | None = None, what: str = "") -> Iterator[None]:
    """Check for about ``needed`` bytes first, then turn a full disk inside the block into
    one :class:`DiskFull` line about ``target``.  The outermost block wins: a full disk
    while writing a file inside a temporary directory is reported for the directory the
    user asked for, with that directory's estimate."""
    target = Path(target)
    if needed is not None:
        check_space(target, needed, what)
    try:
        yield
    except Exception as exc:
        if is_full(exc):
            raise no_space(target, needed, what) from exc
        raise


def reserve(fd: int, size: int) -> None:
    """Allocate the first ``size`` bytes of the open file ``fd`` now, so that a full disk is
    an ``OSError`` here instead of SIGBUS when a memory-mapped page is first written (where
    ``posix_fallocate`` is missing, e.g. macOS, :func:`check_space` is the only guard)."""
    if size > 0 and hasattr(os, "posix_fallocate"):
        os.posix_fallocate(fd, 0, size)
