"""How the command line reports failures: always one line and a non-zero exit.

User mistakes arrive as :class:`~mia.core.base.errors.MiaError` (each with its own message) or
as OS errors (permission denied, disk full), which name the file involved.  Anything
else is a bug in mia: as a safety net it is still one line, which says where the full
traceback was saved; ``MIA_DEBUG=1`` lets it through instead, traceback and all.
"""

from __future__ import annotations

import os
import time
import traceback
from pathlib import Path

from mia.core.base import atomic, diskspace
from mia.core.base.paths import cache_dir

DEBUG_VARIABLE = "MIA_DEBUG"


def debugging() -> bool:
    return os.environ.get(DEBUG_VARIABLE, "") not in ("", "0")


def describe_os_error(exc: OSError) -> str:
    """``PATH: reason`` (the file first, as the user named it), or the reason alone; a full
    disk, wherever a write met it, says how much is free there."""
    if exc.errno in diskspace.FULL and exc.filename:
        return str(diskspace.no_space(Path(exc.filename), None))
    reason = exc.strerror or str(exc) or type(exc).__name__
    return f"{exc.filename}: {reason}" if exc.filename else reason


def save_traceback(exc: BaseException) -> str:
    """Write the traceback of ``exc`` under the cache directory; returns where (or why not)."""
    path = cache_dir() / "crashes" / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.txt"
    try:
        atomic.write_text(path, "".join(traceback.format_exception(exc)))
    except diskspace.DiskFull as error:
        return f"could not save the traceback ({error})"
    except OSError as error:
        return f"could not save the traceback ({describe_os_error(error)})"
    return f"traceback saved to {path}"


def describe_crash(exc: Exception) -> str:
    first = " ".join(str(exc).split())[:200]
    return (f"internal error ({type(exc).__name__}{': ' + first if first else ''}); this is a bug in mia, "
            f"{save_traceback(exc)} (set {DEBUG_VARIABLE}=1 to print it)")
