"""Where each number of the README and docs/ comes from, checked.

A measured number in prose or a table stands in a region opened by a comment naming the
files it was read from::

    <!-- numbers from: docs/experiments/2026-11-30-ablation-synthpedes-v3.json -->

The region runs to the next such comment or heading.  Every decimal number in it must be
one of the values in those files, as written there or rounded to the digits shown (a
fraction may be shown as a percentage); a number in no region, or in none of its files,
is reported.  Not checked: code (fenced blocks and `spans`: commands, options and settings;
the demo's output block is compared line by line with the demo's own log instead), bounds written
as targets (``<= 1.5 s``, ``>= 0.9x``) and Python's version.

    python docs/check_numbers.py          # lists every number without a source
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
#: generated from result files by their own scripts (tests keep them current)
GENERATED = {"performance.md", "cli.md"}
SOURCE = re.compile(r"<!--\s*numbers from:\s*(.*?)\s*-->")
HEADING = re.compile(r"^#{1,6} ")
FENCE = re.compile(r"^```")
CODE_SPAN = re.compile(r"`[^`]*`")
DECIMAL = re.compile(r"(?<![\w.])(?<!Python )(?P<bound>(?:<=|>=|≤|≥)\s*)?[-+±]?(?P<value>\d[\d,]*\.\d+)(?![\w.])")
VALUE_IN_TEXT = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


def _numbers_in(value, into: set[float]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _numbers_in(key, into)
            _numbers_in(item, into)
    elif isinstance(value, list):
        for item in value:
            _numbers_in(item, into)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        into.add(abs(float(value)))
    elif isinstance(value, str):
        into.update(abs(float(token)) for token in VALUE_IN_TEXT.findall(value))


def source_values(path: Path) -> set[float]:
    """Every number in a result file: JSON values (and numbers inside its strings), or
    every number token of a text file such as a log."""
    values: set[float] = set()
    text = path.read_text(encoding="utf-8")
    _numbers_in(json.loads(text) if path.suffix == ".json" else text, values)
    return values


def matches(shown: str, values: set[float]) -> bool:
    """``shown`` (e.g. "29.54") is some value rounded to its digits, a fraction shown as a
    percentage, or milliseconds shown as seconds."""
    digits = len(shown.split(".")[1])
    number = float(shown.replace(",", ""))
    half_step = 0.5 * 10 ** -digits + 1e-9
    return any(abs(value * scale - number) <= half_step for value in values for scale in (1, 100, 0.001))


def regions(text: str) -> list[tuple[int, str, list[str]]]:
    """(line number, the line without its code spans, source files) for every prose or
    table line with a decimal."""
    found, sources, fenced = [], [], False
    for number, line in enumerate(text.splitlines(), start=1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if fenced:
            continue
        if HEADING.match(line):
            sources = []
        marker = SOURCE.search(line)
        if marker:
            sources = marker.group(1).split()
            continue
        prose = CODE_SPAN.sub("", line)
        if DECIMAL.search(prose):
            found.append((number, prose, sources))
    return found


def unsourced(page: Path) -> list[str]:
    """Every number of ``page`` that is in no region or not in its region's files."""
    problems, cache = [], {}
    for number, line, sources in regions(page.read_text(encoding="utf-8")):
        values: set[float] = set()
        for source in sources:
            path = ROOT / source
            if not path.is_file():
                problems.append(f"{page.name}:{number}: source {source} does not exist")
                continue
            values |= cache.setdefault(source, source_values(path))
        for match in DECIMAL.finditer(line):
            if match.group("bound"):
                continue
            shown = match.group("value")
            if not sources:
                problems.append(f"{page.name}:{number}: {shown} has no '<!-- numbers from: FILE -->' above it")
            elif not matches(shown, values):
                problems.append(f"{page.name}:{number}: {shown} is in none of {', '.join(sources)}")
    return problems


def checked_pages() -> list[Path]:
    return [page for page in PAGES if page.name not in GENERATED]


if __name__ == "__main__":
    problems = [problem for page in checked_pages() for problem in unsourced(page)]
    print("\n".join(problems) or "every number has a source")
    sys.exit(1 if problems else 0)
