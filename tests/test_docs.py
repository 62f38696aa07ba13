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
