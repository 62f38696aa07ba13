"""The documentation stays true: every Python example in docs/ runs (in a folder holding an
exported tiny model as ``exported/`` and two crops), the README stays a guide of at most
1,500 words, and docs/cli.md is what the commands' --help says."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

ROOT = Path(__file__).parents[1]
DOCS = sorted((ROOT / "docs").glob("*.md"))
EXAMPLE = re.compile(r"```python\n(.*?)```", re.S)


def examples() -> list[tuple[str, str]]:
    found = []
    for page in DOCS:
        for number, source in enumerate(EXAMPLE.findall(page.read_text()), start=1):
            found.append((f"{page.name}-{number}", source))
    return found


@pytest.fixture(scope="module")
def workspace(tiny_model, tiny_synth, tmp_path_factory) -> Path:
    """``exported/``: the tiny model scoring with its global alignment only (what the plain
    ONNX Runtime client of docs/deploy.md reads), and crops beside it."""
    import torch

    from mia.export.exporting import export_model

    folder = tmp_path_factory.mktemp("docs")
    payload = torch.load(tiny_model[0] / "best.pt", weights_only=True)
    payload["active"] = ["global"]
    torch.save(payload, folder / "global.pt")
    export_model(folder / "global.pt", folder / "exported", "onnx", exporter="torchscript", device="cpu",
                 log=lambda m: None)
    crops = sorted((tiny_synth / "imgs" / "test").glob("*.jpg"))
    (folder / "crops").mkdir()
    for n, crop in enumerate(crops[:6], start=1):
        shutil.copy(crop, folder / f"crop{n}.jpg")
        shutil.copy(crop, folder / "crops" / f"crop{n}.jpg")
    return folder


@pytest.mark.parametrize("name, source", examples(), ids=[name for name, _ in examples()])
def test_every_python_example_in_docs_runs(workspace, name, source):
    done = subprocess.run([sys.executable, "-c", source], cwd=workspace, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{name}:\n{done.stderr[-3000:]}"


def test_readme_is_a_short_guide():
    words = len(re.findall(r"\S+", (ROOT / "README.md").read_text()))
    assert words <= 1500, f"README.md has {words} words"


def test_cli_reference_is_current():
    sys.path.insert(0, str(ROOT / "docs"))
    try:
        from make_cli_reference import reference
    finally:
        sys.path.pop(0)
    assert (ROOT / "docs" / "cli.md").read_text() == reference(), "run: python docs/make_cli_reference.py"


def test_the_command_listing_does_not_depend_on_what_is_loaded():
    from mia.cli.main import cli

    before = CliRunner().invoke(cli, ["--help"]).output
    context = click.Context(cli)
    for name in cli.list_commands(context):
        cli.get_command(context, name)
    assert CliRunner().invoke(cli, ["--help"]).output == before


def test_no_placeholder_is_left():
    for page in [ROOT / "README.md", *DOCS]:
        assert "{{" not in page.read_text(), page.name


def test_performance_page_is_generated_from_the_results():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from make_performance import performance_page
    finally:
        sys.path.pop(0)
    assert (ROOT / "docs" / "performance.md").read_text() == performance_page(), \
        "run: python benchmarks/make_performance.py"


def _docs_module(name: str):
    sys.path.insert(0, str(ROOT / "docs"))
    try:
        return __import__(name)
    finally:
        sys.path.pop(0)


def test_the_readme_demo_output_is_what_the_demo_printed():
    demo_output = _docs_module("demo_output")
    recorded = demo_output.RECORDED.read_text(encoding="utf-8")
    assert demo_output.readme_block((ROOT / "README.md").read_text()) == demo_output.render(recorded), \
        "run: python docs/demo_output.py (or --record runs/demo.log after make demo)"
    assert "demo: done on " in recorded and "test: " in recorded  # a whole run, not a fragment


def test_every_number_in_the_readme_and_docs_comes_from_a_results_file():
    check_numbers = _docs_module("check_numbers")
    problems = [problem for page in check_numbers.checked_pages() for problem in check_numbers.unsourced(page)]
    assert not problems, "\n".join(problems)


def test_the_number_check_catches_a_number_that_drifted(tmp_path):
    check_numbers = _docs_module("check_numbers")
    results = tmp_path / "r.json"
    results.write_text('{"R1": 29.5432, "seconds": 35754.8, "share": 0.9924}')
    page = tmp_path / "page.md"
    source = f"<!-- numbers from: {results} -->\n"
    page.write_text(source + "R@1 29.54, 35.75 s, 99.24% and `--lr 0.001` (code); <= 1.5 s is a target\n")
    assert check_numbers.unsourced(page) == []
    page.write_text(source + "R@1 29.55\n\n## Next\nmAP 23.87\n")
    assert check_numbers.unsourced(page) == [f"page.md:2: 29.55 is in none of {results}",
                                             "page.md:5: 23.87 has no '<!-- numbers from: FILE -->' above it"]


def test_the_architecture_page_names_every_module_and_only_modules_that_exist():
    page = (ROOT / "docs" / "architecture.md").read_text()
    named = set(re.findall(r"`((?:core|plugins|export|cli)/[\w/]*?\.py)`", page))
    missing = sorted(path for path in named if not (ROOT / path).is_file())
    assert not missing, f"docs/architecture.md names modules that do not exist: {missing}"
    folders = set(re.findall(r"`((?:core|plugins|export|cli)/[\w/]+)/`", page))
    modules = {path.relative_to(ROOT).as_posix()
               for layer, pattern in (("core", "**/*.py"), ("plugins", "*.py"), ("export", "*.py"), ("cli", "*.py"))
               for path in (ROOT / layer).glob(pattern) if path.name != "__init__.py"}
    unnamed = sorted(module for module in modules if module not in named)
    assert not unnamed, f"docs/architecture.md does not name: {unnamed}"
    subpackages = {path.parent.relative_to(ROOT).as_posix()
                   for layer in ("core", "plugins") for path in (ROOT / layer).glob("*/__init__.py")}
    assert subpackages <= folders, f"docs/architecture.md does not name the folders {sorted(subpackages - folders)}"
