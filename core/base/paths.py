"""Where mia keeps what it can rebuild: generated data sets and image-check caches."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """``$MIA_CACHE_DIR``, else ``$XDG_CACHE_HOME/mia``, else ``~/.cache/mia``."""
    if os.environ.get("MIA_CACHE_DIR"):
        return Path(os.environ["MIA_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mia"
