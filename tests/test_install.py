"""A serving install without torch: a fresh virtual environment with only the runtime's
packages (linked from this one: tests never download) and mia installed with --no-deps,
as the README's serving recipe does, builds an index and searches it."""

from __future__ import annotations

import re
import subprocess
import venv
from importlib import metadata
from pathlib import Path


from mia.export.manifest import read_manifest

ROOT = Path(__file__).parents[1]
#: what `pip install --no-deps mia-reid` needs beside it to search and serve (README: Deploying)
SERVING = ["onnxruntime-gpu", "numpy", "pillow", "click", "pluggy", "tokenizers", "faiss-cpu", "starlette", "uvicorn"]


def closure(names: list[str]) -> set[str]:
    """The distributions ``names`` need, transitively (extras and markers that fail left out)."""
    seen, todo = set(), list(names)
    while todo:
        name = re.split(r"[\s;<>=!~\[(]", todo.pop(), maxsplit=1)[0].lower().replace("_", "-")
        if name in seen:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        seen.add(name)
        for requirement in dist.requires or []:
            if "extra ==" not in requirement:
                todo.append(requirement)
    return seen


def link_distributions(names: set[str], site: Path) -> None:
    for name in names:
        dist = metadata.distribution(name)
        tops = {Path(str(f)).parts[0] for f in dist.files or [] if not str(f).startswith("..")}
        for top in tops:
            source = Path(dist.locate_file(top))
            if source.exists() and not (site / top).exists() and top != "__pycache__":
                (site / top).symlink_to(source)


def test_serving_install_without_torch(tiny_model, tiny_synth, tmp_path):
    _, export = tiny_model
    assert read_manifest(export)["backend"] == "onnx"
    env_dir = tmp_path / "serving-venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    needed = closure(SERVING)
    assert not needed & {"torch", "torchvision", "transformers", "onnx"}, needed
    link_distributions(needed | {"pip", "setuptools"}, site)  # the installer itself, as any venv has
    installed = subprocess.run([python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                                "--no-index", "-e", str(ROOT)], capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stderr[-2000:]
    mia = env_dir / "bin" / "mia"
    torchless = subprocess.run([python, "-c", "import torch"], capture_output=True, text=True)
    assert torchless.returncode != 0  # really without torch
    index = tmp_path / "index"
    built = subprocess.run([mia, "index", "build", "--model", export, "--gallery", tiny_synth / "imgs" / "test",
                            "--out", index, "--workers", "0"], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-2000:]
    found = subprocess.run([mia, "search", "a man in a black coat", "--model", export, "--index", index, "--top-k", "3"],
                           capture_output=True, text=True, timeout=120)
    assert found.returncode == 0, found.stderr[-2000:]
    assert len(found.stdout.strip().splitlines()) == 3
    served = subprocess.run([python, "-c", "import mia.export.serve, mia.cli.serve_cmd"], capture_output=True, text=True)
    assert served.returncode == 0, served.stderr[-2000:]
