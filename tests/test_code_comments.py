"""Code says why it is as it is: no docstring or comment in the four layers carries a
measured figure, a date or a benchmark's file name (those live in docs/ and CHANGELOG.md,
where they are dated and sourced; a figure in a docstring goes stale without a test
noticing)."""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

ROOT = Path(__file__).parents[1]
LAYERS = ("core", "plugins", "export", "cli")
#: a date, the word "measured", a benchmark's path, a quantity with a unit of time, size,
#: rate or ratio, "about <number>", or a speed comparison
FIGURE = re.compile(r"20\d\d-\d\d-\d\d|\bmeasured\b|benchmarks/"
                    r"|\b\d[\d,.]*(?:-\d[\d,.]*)?\s?(?:ms|s|sec|seconds|min|minutes|MiB|GiB|MB|GB|x|%|points"
                    r"|images/s|it/s|fps)\b(?!\s*=)"
                    r"|\babout [\d,.]*\d|\b(?:faster|slower) than", re.I)
#: design constants that read like figures, each with why it stays
ALLOWED = {
    # a drawing technique (supersampling factor), not a measurement
    ("plugins/datasets/synthpedes/render.py", "2x canvas"),
    # a rule of the drawn garments' geometry, not a measurement
    ("plugins/datasets/synthpedes/render.py", "~30% of the figure's box"),
    # FAISS's own requirement for training an IVF list
    ("export/store.py", "39 points per list"),
}


def _texts(path: Path):
    """(line, text) of every docstring line and comment of a module."""
    source = path.read_text(encoding="utf-8")
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            docstring = ast.get_docstring(node, clean=False)
            if docstring:
                for offset, line in enumerate(docstring.splitlines()):
                    yield node.body[0].lineno + offset, line
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            yield token.start[0], token.string


def figures_in_code_text() -> list[str]:
    found = []
    for layer in LAYERS:
        for path in sorted((ROOT / layer).rglob("*.py")):
            name = path.relative_to(ROOT).as_posix()
            for line, text in _texts(path):
                if FIGURE.search(text) and not any(name == file and fragment in text for file, fragment in ALLOWED):
                    found.append(f"{name}:{line}: {text.strip()}")
    return found


def test_no_docstring_or_comment_carries_a_figure_a_date_or_a_benchmark_file():
    found = figures_in_code_text()
    assert not found, "move these to docs/ or CHANGELOG.md:\n" + "\n".join(found)


def test_the_scan_sees_a_figure():
    assert FIGURE.search("runs 5-15x slower on the CPU") and FIGURE.search("measured on 2026-11-30")
    assert FIGURE.search("see benchmarks/bench_train.py") and FIGURE.search("about 2,500 kernels")
    assert not FIGURE.search("K horizontal stripes, 6 by default") and not FIGURE.search("max_words: int = 64")
