"""Decode every image once before training, so a bad file is a report, not a crash at
batch 9,000.  Results are cached by (path, size, mtime) so later runs pay only a stat."""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PIL import Image

from mia.core.base import atomic
from mia.core.base.paths import cache_dir


def _decode_status(path: Path) -> str:
    try:
        with Image.open(path) as image:
            image.load()  # full decode: truncated files fail here, not in a DataLoader worker
        return "ok"
    except FileNotFoundError:
        return "missing"
    except Exception:  # PIL raises many types for broken files; all mean the same to us
        return "corrupt"


def _cache_file(paths: list[Path]) -> Path:
    key = hashlib.sha1(str(os.path.commonpath([str(p) for p in paths])).encode()).hexdigest()[:16]
    return cache_dir() / "image-check" / f"{key}.json"


def check_images(paths: list[Path]) -> dict[Path, str]:
    """Map each path to ``"ok"``, ``"missing"`` or ``"corrupt"``."""
    if not paths:
        return {}
    cache_path = _cache_file(paths)
    try:
        cache = json.loads(cache_path.read_text())
    except (OSError, ValueError):
        cache = {}
    result, todo, stamps = {}, [], {}
    for path in paths:
        try:
            stat = path.stat()
        except OSError:
            result[path] = "missing"
            continue
        stamps[path] = [stat.st_size, stat.st_mtime_ns]
        cached = cache.get(str(path))
        if cached is not None and cached[:2] == stamps[path]:
            result[path] = cached[2]
        else:
            todo.append(path)
    if todo:
        with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 1) * 2)) as pool:
            for path, status in zip(todo, pool.map(_decode_status, todo)):
                result[path] = status
                cache[str(path)] = [*stamps[path], status]
        atomic.write_text(cache_path, json.dumps(cache))
    return result
