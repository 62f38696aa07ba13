"""Test set-up: no third-party plugins, a private cache, and small shared fixtures."""

import os

os.environ["MIA_LOAD_PLUGINS"] = ""  # installed plugins must not change what tests see
os.environ["MIA_OFFLINE"] = os.environ["HF_HUB_OFFLINE"] = "1"  # no test may reach for the network

import json
from pathlib import Path

import pytest
from PIL import Image

from mia.core.plugins import reset_plugins


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    os.environ["MIA_CACHE_DIR"] = str(tmp_path_factory.mktemp("mia-cache"))
    yield


@pytest.fixture(autouse=True)
def _fresh_plugins():
    reset_plugins()
    yield
    reset_plugins()


def write_image(path: Path, size=(40, 100), color=(200, 30, 30), mode="RGB", fmt=None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color if mode == "RGB" else 128).save(path, format=fmt)
    return path


def write_pedes(root: Path, annotation_name: str, entries: list[dict], image_field: str = "file_path") -> Path:
    """A data set in one of the real JSON formats, with a small image for each entry."""
    for i, entry in enumerate(entries):
        write_image(root / "imgs" / entry[image_field], color=(20 * i % 255, 80, 160))
    (root / annotation_name).write_text(json.dumps(entries))
    return root


@pytest.fixture(scope="session")
def tiny_synth(tmp_path_factory) -> Path:
    """A small synthpedes set (shared by the training and CLI tests)."""
    from mia.plugins.datasets.synthpedes import SynthConfig, generate_synthpedes

    out = tmp_path_factory.mktemp("synth") / "tiny"
    return generate_synthpedes(out, SynthConfig(ids=24, images_per_id=3, seed=1, height=96))


@pytest.fixture(scope="session")
def tiny_model(tiny_synth, tmp_path_factory) -> tuple[Path, Path]:
    """One tiny global+fine model trained for an epoch, and its ONNX export: (run, export)."""
    from test_cli_train import TINY, run

    root = tmp_path_factory.mktemp("tiny-model")
    trained = run("train", "--data", tiny_synth, "--out", root / "run", "--epochs", 1, *TINY, "--align", "global,fine")
    assert trained.exit_code == 0, trained.output
    exported = run("export", "onnx", "--checkpoint", root / "run" / "best.pt", "--out", root / "export",
                   "--exporter", "torchscript", "--device", "cpu")
    assert exported.exit_code == 0, exported.output
    return root / "run", root / "export"
