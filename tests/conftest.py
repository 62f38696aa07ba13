"""Test set-up: no third-party plugins, a private cache, and small shared fixtures."""

import os

os.environ["MIA_LOAD_PLUGINS"] = ""  # installed plugins must not change what tests see
os.environ["MIA_OFFLINE"] = os.environ["HF_HUB_OFFLINE"] = "1"  # no test may reach for the network

import contextlib
import json
from pathlib import Path

import pytest
from PIL import Image

from mia.core.registry.plugins import reset_plugins


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


@pytest.fixture(scope="session")
def tiny_bert(tiny_synth, tmp_path_factory) -> Path:
    """A Hugging Face model directory: a 2-layer, 32-wide random BERT and a WordPiece
    tokenizer over the tiny set's words (what all-MiniLM-L6-v2 looks like, 1,000x smaller)."""
    import torch
    from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordPiece
    from transformers import BertConfig, BertModel

    from mia.core.data.tokenizer import tokenize

    words = sorted({w for e in json.loads((tiny_synth / "reid_raw.json").read_text()) for c in e["captions"]
                    for w in tokenize(c)})
    vocab = {token: i for i, token in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words, "-"])}
    tokenizer = Tokenizer(WordPiece(vocab, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])])
    folder = tmp_path_factory.mktemp("tiny-bert")
    tokenizer.save(str(folder / "tokenizer.json"))
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128)
    BertModel(config).save_pretrained(folder)
    return folder


TINY_CLIP = "mia-tiny-clip"


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory) -> str:
    """An open_clip configuration of a 2-layer, 32-wide ViT and text tower with a 32-token
    context, registered under :data:`TINY_CLIP` (what ViT-B-16 looks like, shrunk)."""
    import open_clip

    path = tmp_path_factory.mktemp("open-clip") / f"{TINY_CLIP}.json"
    path.write_text(json.dumps({
        "embed_dim": 24,
        "vision_cfg": {"image_size": 64, "layers": 2, "width": 32, "patch_size": 16, "head_width": 16},
        "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2},
    }))
    open_clip.add_model_config(path)
    return TINY_CLIP


@contextlib.contextmanager
def one_torch_thread():
    """On a shared 2-core machine, OpenMP threads spinning against other busy processes
    make this tiny training run about ten times slower than a single thread does."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def model_dir(tiny_synth, tmp_path_factory):
    """A tiny model fitted to the train split (8 epochs at a gentle rate), exported to ONNX
    (searched by the search and video tests).

    ``last.pt``, not ``best.pt``: best is picked on a 6-image validation split and can be an
    early epoch, while search quality here depends on having fit the train identities.
    """
    from test_cli_train import TINY, run

    root = tmp_path_factory.mktemp("search-model")
    with one_torch_thread():
        trained = run("train", "--data", tiny_synth, "--out", root / "run", "--epochs", 8, *TINY, "--lr", "1e-3")
        assert trained.exit_code == 0, trained.output
        exported = run("export", "onnx", "--checkpoint", root / "run" / "last.pt", "--out", root / "model",
                       "--exporter", "torchscript", "--device", "cpu")
        assert exported.exit_code == 0, exported.output
    return root / "model"
