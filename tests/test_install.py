"""The README's serving install, run as written on a machine without torch.

A fresh virtual environment gets only the distributions that mia's base requirements and
its serve extra need (linked from this one, .dist-info included, so that pip sees them as
installed and nothing is downloaded), then the README's serving command runs in a copy of
the sources, as in a clone.  The result must pass ``pip check``, have no torch, build,
verify and search an index, and serve; a command that needs the train extra must say so in
one line.  These are separate processes on purpose: an install is what is under test.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
import venv
from importlib import metadata
from pathlib import Path

import pytest

from mia.cli.main import TRAIN_EXTRA

ROOT = Path(__file__).parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def requirement_name(requirement: str) -> str:
    return re.split(r"[\s;<>=!~\[(]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def readme_install(extra: str) -> list[str]:
    """The README's install command for ``extra``, from the fenced block under '## Install'."""
    section = (ROOT / "README.md").read_text().split("\n## Install\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```\n(.*?)```", section, re.S).group(1)
    lines = [line.split("#", 1)[0].strip() for line in block.splitlines() if f"[{extra}]" in line]
    assert len(lines) == 1, f"README.md, Install: {len(lines)} command(s) for the {extra} extra"
    return shlex.split(lines[0])


def closure(requirements: list[str]) -> set[str]:
    """The installed distributions that ``requirements`` need, transitively (extras and
    distributions not installed here left out)."""
    seen, todo = set(), list(requirements)
    while todo:
        name = requirement_name(todo.pop())
        if name in seen:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        seen.add(name)
        todo += [r for r in dist.requires or [] if "extra ==" not in r]
    return seen


def link_distributions(names: set[str], site: Path) -> None:
    """Link each distribution's top-level files and folders, its .dist-info among them."""
    for name in names:
        dist = metadata.distribution(name)
        tops = {Path(str(f)).parts[0] for f in dist.files or [] if not str(f).startswith("..")}
        tops.add(Path(dist._path).name)  # the .dist-info folder (no public name), whether or not RECORD lists it
        for top in tops - {"__pycache__"}:
            source = Path(dist.locate_file(top))
            if source.exists() and not (site / top).exists():
                (site / top).symlink_to(source)


def copy_of_sources(target: Path) -> Path:
    """The sources as a clone has them: the tree without .git and what .gitignore leaves out."""
    ignored = [line.strip().rstrip("/") for line in (ROOT / ".gitignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")]
    shutil.copytree(ROOT, target, ignore=shutil.ignore_patterns(".git", *ignored), symlinks=True)
    return target


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_cli_names_the_train_extra_as_pyproject_has_it():
    assert set(TRAIN_EXTRA) == {requirement_name(r) for r in PYPROJECT["optional-dependencies"]["train"]}


def test_readme_serving_install_without_torch(tiny_model, tiny_synth, tmp_path):
    _, export = tiny_model
    env_dir = tmp_path / "serving-venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python, mia = env_dir / "bin" / "python", env_dir / "bin" / "mia"
    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    needed = closure(PYPROJECT["dependencies"] + PYPROJECT["optional-dependencies"]["serve"])
    assert not needed & set(TRAIN_EXTRA), needed
    link_distributions(needed | closure(["pip", "setuptools"]), site)  # the installer and the build backend
    # pip sees the linked distributions only: no configured index or wheel folder
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env |= {"PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}

    def run(*args, timeout=120):
        return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout, env=env)

    pip, install, *rest = readme_install("serve")
    assert (pip, install) == ("pip", "install")
    # as written, except: no index (tests never download) and no build isolation (it would fetch setuptools)
    installed = subprocess.run([python, "-m", "pip", "install", "--no-index", "--no-build-isolation", *rest],
                               cwd=copy_of_sources(tmp_path / "clone"), capture_output=True, text=True,
                               timeout=300, env=env)
    assert installed.returncode == 0, installed.stdout[-2000:] + installed.stderr[-2000:]
    checked = run(python, "-m", "pip", "check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert run(python, "-c", "import torch").returncode != 0  # really without torch

    index = tmp_path / "index"
    built = run(mia, "index", "build", "--model", export, "--gallery", tiny_synth / "imgs" / "test",
                "--out", index, "--workers", "0")
    assert built.returncode == 0, built.stderr[-2000:]
    verified = run(mia, "index", "verify", index)
    assert verified.returncode == 0, verified.stderr[-2000:]
    found = run(mia, "search", "a man in a black coat", "--model", export, "--index", index, "--top-k", "3")
    assert found.returncode == 0, found.stderr[-2000:]
    assert len(found.stdout.strip().splitlines()) == 3

    port = free_port()
    server = subprocess.Popen([mia, "serve", "--model", export, "--index", index, "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # localhost, whatever the proxy settings
    try:
        deadline, status = time.monotonic() + 60, None
        while status is None and server.poll() is None and time.monotonic() < deadline:
            try:
                with direct.open(f"http://127.0.0.1:{port}/healthz", timeout=5) as answer:
                    status = answer.status
            except OSError:
                time.sleep(0.2)
    finally:
        server.terminate()
        _, errors = server.communicate(timeout=30)
    assert status == 200, errors[-2000:]

    refused = run(mia, "train", "--data", "synthpedes", "--out", tmp_path / "run")
    assert refused.returncode == 1
    assert refused.stdout == ""
    assert refused.stderr == ("Error: mia train needs PyTorch: pip install 'mia-reid[train]' "
                              "(torch is not installed)\n")


@pytest.mark.parametrize("module", ["torchvision", "onnx", "onnxscript"])
def test_the_rest_of_the_train_extra_is_named_when_missing(tiny_model, tiny_synth, tmp_path, module):
    """torch may be installed without the rest of the extra; each missing package is named,
    also where it fails under another error (a plugin's component, the exporter)."""
    hide = f"import sys; sys.modules[{module!r}] = None; sys.argv[0] = 'mia'; from mia.cli.main import cli; cli()"
    export = ["export", "onnx", "--checkpoint", tiny_model[0] / "best.pt", "--out", tmp_path / "export"]
    args = {"torchvision": ["train", "--data", tiny_synth, "--out", tmp_path / "run", "--image-encoder", "resnet18",
                            "--workers", "0", "--device", "cpu"],
            "onnx": export,
            "onnxscript": [*export, "--exporter", "dynamo", "--device", "cpu"]}[module]
    refused = subprocess.run([sys.executable, "-c", hide, *map(str, args)], capture_output=True, text=True,
                             timeout=300)
    assert refused.returncode == 1, refused.stderr[-2000:]
    assert refused.stderr.splitlines()[-1] == (f"Error: mia {args[0]} needs {TRAIN_EXTRA[module]}: "
                                               f"pip install 'mia-reid[train]' ({module} is not installed)")
