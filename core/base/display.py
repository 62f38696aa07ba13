"""Text that can be printed anywhere: file names that are not UTF-8 (they arrive from the
OS with lone surrogates) become ``\\xff`` escapes instead of a crash in a terminal, a
JSON consumer or an HTML page."""

from __future__ import annotations

from pathlib import Path


def displayable(text: str | Path) -> str:
    return str(text).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
