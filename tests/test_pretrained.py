"""Pretrained starting points and encoders that own their input side: torchvision weights by
name from the hub cache (no network), encoder-declared normalisation through checkpoint,
manifest and runtime, and the Hugging Face text tower (a tiny random BERT written at run
time stands in for all-MiniLM-L6-v2) trained, exported, verified and served without torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision

from mia.core.base.errors import MiaError
from mia.core.registry.plugins import get_plugin_manager
from mia.core.data.preprocess import ImagePreprocessing, load_image_array
from mia.core.data.text_arrays import TextSettings, encode_texts, phrase_char_spans, phrase_positions
from mia.core.data.tokenizer import Vocabulary
from mia.export.manifest import read_manifest
from test_cli_train import TINY, run
from test_plugins import _plugin

RESNET18_FILE = "resnet18-f37072fd.pth"  # torchvision's file name for ResNet18_Weights.IMAGENET1K_V1


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    """A private torch hub cache holding a (random) ResNet-18 state dict under torchvision's name."""
    home = tmp_path / "torch-home"
    (home / "hub" / "checkpoints").mkdir(parents=True)
    state = torchvision.models.resnet18(weights=None).state_dict()
    state["fc.bias"] = torch.full_like(state["fc.bias"], 0.25)  # recognisable
    torch.save(state, home / "hub" / "checkpoints" / RESNET18_FILE)
    monkeypatch.setenv("TORCH_HOME", str(home))
    monkeypatch.setenv("MIA_OFFLINE", "1")
    return home


def test_weights_by_name_load_from_the_hub_cache_without_network(torch_home):
    from mia.plugins.torchvision_encoders import _resnet

    saved = torch.load(torch_home / "hub" / "checkpoints" / RESNET18_FILE, weights_only=True)
    for name in ("imagenet", "IMAGENET1K_V1", "ResNet18_Weights.IMAGENET1K_V1"):
        encoder = _resnet("resnet18")(32, 6, weights=name)
        assert torch.equal(encoder.trunk.conv1.weight, saved["conv1.weight"])
        assert encoder.weights_source == "torchvision:ResNet18_Weights.IMAGENET1K_V1"


def test_offline_miss_and_unknown_names_are_one_line(torch_home):
    from mia.plugins.torchvision_encoders import _resnet

    with pytest.raises(MiaError) as missing:
        _resnet("resnet50")(32, 6, weights="imagenet")
    message = str(missing.value)
    assert "\n" not in message and "resnet50-11ad3fa6.pth is not in" in message
    assert str(torch_home / "hub" / "checkpoints") in message and "[offline]" in message
    with pytest.raises(MiaError, match=r"IMAGENET9: neither an existing file nor a weights name of resnet18 "
                                       r"\(imagenet, default, IMAGENET1K_V1\)"):
        _resnet("resnet18")(32, 6, weights="IMAGENET9")


def test_checkpoint_and_manifest_record_the_starting_weights(torch_home, tiny_synth, tmp_path):
    out = tmp_path / "run"
    trained = run("train", "--data", tiny_synth, "--out", out, "--epochs", 1, *TINY, "--image-weights", "imagenet")
    assert trained.exit_code == 0, trained.output
    spec = torch.load(out / "best.pt", weights_only=True)["spec"]
    assert spec["image_weights"] == "torchvision:ResNet18_Weights.IMAGENET1K_V1"
    exported = run("export", "onnx", "--checkpoint", out / "best.pt", "--out", tmp_path / "export",
                   "--exporter", "torchscript")
    assert exported.exit_code == 0, exported.output
    assert read_manifest(tmp_path / "export")["image"]["weights"] == "torchvision:ResNet18_Weights.IMAGENET1K_V1"


def test_weights_add_checks_the_name_and_the_hash_and_list_shows_the_cache(torch_home, tmp_path, monkeypatch):
    import hashlib

    import mia.core.modeling.pretrained as pretrained
    from test_hostile_inputs import assert_one_line_failure

    listed = run("weights", "list")
    assert listed.exit_code == 0 and f"resnet18      IMAGENET1K_V1   cached  {torch_home}" in listed.output
    assert "mobilenet_v2  IMAGENET1K_V1   missing" in listed.output
    state = tmp_path / "state.pth"
    torch.save({"w": torch.ones(2)}, state)
    prefix = hashlib.sha256(state.read_bytes()).hexdigest()[:8]
    assert_one_line_failure(run("weights", "add", state), 1, ("state.pth: not the name of a torchvision weights file",))
    renamed = tmp_path / "mobilenet_v2-b0353104.pth"
    renamed.write_bytes(state.read_bytes())
    assert_one_line_failure(run("weights", "add", renamed), 1, (f"its sha256 starts {prefix}, not b0353104",))
    named = tmp_path / f"mobilenet_v2-{prefix}.pth"  # a file whose name carries its own hash
    named.write_bytes(state.read_bytes())
    weights = torchvision.models.MobileNet_V2_Weights.IMAGENET1K_V1
    monkeypatch.setattr(pretrained, "known_weights_files", lambda: {named.name: weights})
    added = run("weights", "add", named)
    assert added.exit_code == 0, added.output
    assert (torch_home / "hub" / "checkpoints" / "mobilenet_v2-b0353104.pth").read_bytes() == state.read_bytes()


# --------------------------------------------------------------------------- encoder-declared preprocessing

ODD = ImagePreprocessing(mean=(0.1, 0.2, 0.3), std=(0.5, 0.25, 0.125), size=(80, 32))


def register_odd_encoder():
    """An image encoder with its own statistics and default size (as a CLIP tower has)."""
    from mia.plugins.torchvision_encoders import _resnet

    def odd(embed_dim, num_parts, weights=None):
        encoder = _resnet("resnet18")(embed_dim, num_parts, weights)
        encoder.preprocessing = ODD
        return encoder

    def register_image_encoders(register):
        register("odd", odd)

    get_plugin_manager().register(_plugin("odd-plugin", register_image_encoders=register_image_encoders))


def test_the_encoders_normalisation_and_size_travel_to_the_runtime(tiny_synth, tmp_path):
    from mia.export.runtime import Retriever

    register_odd_encoder()
    out = tmp_path / "run"
    options = [o for o in TINY if o not in ("--image-size", "64x32")]
    trained = run("train", "--data", tiny_synth, "--out", out, "--epochs", 1, *options, "--image-encoder", "odd")
    assert trained.exit_code == 0, trained.output
    spec = torch.load(out / "best.pt", weights_only=True)["spec"]
    assert (spec["image_mean"], spec["image_std"], spec["image_size"]) == (list(ODD.mean), list(ODD.std), [80, 32])
    exported = run("export", "onnx", "--checkpoint", out / "best.pt", "--out", tmp_path / "export",
                   "--exporter", "torchscript", "--check-data", tiny_synth)
    assert exported.exit_code == 0, exported.output
    manifest = read_manifest(tmp_path / "export")
    assert (manifest["image"]["mean"], manifest["image"]["std"], manifest["image"]["size"]) == \
        (list(ODD.mean), list(ODD.std), [80, 32])
    image = next((tiny_synth / "imgs").rglob("*.jpg"))
    arrays = Retriever(tmp_path / "export", device="cpu").preprocess_images([image])
    np.testing.assert_array_equal(arrays[0], load_image_array(image, (80, 32), ODD.mean, ODD.std))


# --------------------------------------------------------------------------- phrases as spans


def test_phrase_spans_follow_the_words_of_the_caption():
    caption = "A man in a Black T-shirt, black jeans and a black T-shirt."
    assert phrase_char_spans(caption, ["black t-shirt", "black jeans", "black t-shirt", "red hat"]) == \
        [(11, 24), (26, 37), (44, 57)]
    vocab = Vocabulary.build([caption])
    spans = vocab.token_spans(caption, 64)
    assert phrase_positions(caption, ["black jeans", "black t-shirt"], spans, 6) == [[8, 9], [12, 13, 14]]
    tokens, phrases = encode_texts([caption], vocab, TextSettings(phrase_encoding="spans"), [["black jeans"]])
    assert [tokens[0, p - 1] for p in phrases[0, 0] if p] == vocab.encode("black jeans", 6)


def test_bigru_trains_with_phrase_spans(tiny_synth, tmp_path):
    out = tmp_path / "run"
    trained = run("train", "--data", tiny_synth, "--out", out, "--epochs", 1, *TINY, "--align", "global,fine",
                  "--phrase-encoding", "spans")
    assert trained.exit_code == 0, trained.output
    assert torch.load(out / "best.pt", weights_only=True)["spec"]["phrase_encoding"] == "spans"


# --------------------------------------------------------------------------- the transformer text tower


@pytest.fixture(scope="module")
def transformer_export(tiny_bert, tiny_synth, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("transformer")
    trained = run("train", "--data", tiny_synth, "--out", root / "run", "--epochs", 1, *TINY, "--align",
                  "global,part,fine", "--text-encoder", "transformer", "--text-weights", tiny_bert)
    assert trained.exit_code == 0, trained.output
    assert "hf tokenizer of" in trained.output
    exported = run("export", "onnx", "--checkpoint", root / "run" / "best.pt", "--out", root / "export",
                   "--check-data", tiny_synth, "--device", "cpu")
    assert exported.exit_code == 0, exported.output
    assert "recall check passed" in exported.output
    return root


def test_transformer_trains_fine_tunes_slowly_and_rebuilds_from_its_checkpoint(transformer_export, tiny_bert):
    from mia.core.modeling.checkpoint import load_checkpoint, model_from_checkpoint

    payload = load_checkpoint(transformer_export / "run" / "last.pt", resumable=True)
    spec = payload["spec"]
    assert spec["text_encoder"] == "transformer" and spec["phrase_encoding"] == "spans"
    assert spec["text_weights"] == str(tiny_bert) and spec["text_config"]["hidden_size"] == 32
    assert payload["tokenizer"]["kind"] == "hf"
    mults = sorted({group["lr_mult"] for group in payload["optimizer"]["param_groups"]})
    assert mults == [0.1, 1.0]  # the tower at --text-lr-mult, the heads at the full rate
    model, tokenizer = model_from_checkpoint(payload)  # no --text-weights needed to rebuild
    assert len(tokenizer) == model.text_encoder.backbone.config.vocab_size + 1


def test_text_lr_mult_zero_freezes_the_tower(tiny_bert, tiny_synth, tmp_path):
    from safetensors.torch import load_file

    out = tmp_path / "frozen"
    trained = run("train", "--data", tiny_synth, "--out", out, "--epochs", 1, *TINY, "--text-encoder", "transformer",
                  "--text-weights", tiny_bert, "--text-lr-mult", 0)
    assert trained.exit_code == 0, trained.output
    start = load_file(tiny_bert / "model.safetensors")
    payload = torch.load(out / "last.pt", weights_only=True)
    tower = {k.removeprefix("text_encoder.backbone."): v for k, v in payload["model"].items()
             if k.startswith("text_encoder.backbone.")}
    assert tower and all(torch.equal(tower[k], start[k]) for k in tower if k in start)
    assert {group["lr_mult"] for group in payload["optimizer"]["param_groups"]} == {1.0}  # the tower is not optimised


def test_transformer_export_is_verified_and_carries_its_tokenizer(transformer_export):
    manifest = read_manifest(transformer_export / "export")
    text = manifest["text"]
    assert text["tokenizer"] == "hf" and text["tokenizer_file"] == "tokenizer.json"
    assert "tokenizer.json" in manifest["files"] and text["phrase_encoding"] == "spans"
    assert manifest["exporter"] == "dynamo"
    assert all(shape_axis in ("batch", "words") for shape_axis in manifest["graphs"]["text_encoder"]["inputs"][0]["shape"])
    diffs = manifest["verification"]["max_abs_diff"]
    assert diffs["text_encoder.text_global"] <= 1e-4 * 50 and diffs["text_encoder.text_phrases"] <= 1e-4 * 50


SERVE_WITHOUT_TORCH = """
import sys
from mia.export.runtime import Retriever
retriever = Retriever(sys.argv[1], device="cpu")
gallery = retriever.encode_images(sys.argv[2:])
hits = retriever.search("a man in a black coat and blue jeans", gallery, top_k=3)
assert len(hits) == 3, hits
leaked = [name for name in ("torch", "transformers") if name in sys.modules]
assert not leaked, leaked
print(type(retriever.tokenizer).__name__)
"""


def test_transformer_export_serves_without_torch_or_transformers(transformer_export, tiny_synth):
    images = [str(p) for p in sorted((tiny_synth / "imgs").rglob("*.jpg"))[:4]]
    done = subprocess.run([sys.executable, "-c", SERVE_WITHOUT_TORCH, str(transformer_export / "export"), *images],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "HFTokenizer"


@pytest.mark.parametrize("make, fragment", [
    (lambda d, t: ["--text-weights", t / "nowhere"], "no such model directory"),
    (lambda d, t: ["--text-weights", d], "has no tokenizer.json (the tokenizer)"),
    (lambda d, t: [], "needs --text-weights NAME_OR_DIR"),
    (lambda d, t: ["--text-weights", "nobody/no-such-model"], "not in the Hugging Face cache"),
])
def test_bad_text_weights_are_one_line(tiny_bert, tiny_synth, tmp_path, monkeypatch, make, fragment):
    from test_hostile_inputs import assert_one_line_failure

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    no_tokenizer = tmp_path / "no-tokenizer"
    no_tokenizer.mkdir()
    (no_tokenizer / "config.json").write_text((tiny_bert / "config.json").read_text())
    result = run("train", "--data", tiny_synth, "--out", tmp_path / "run", *TINY, "--text-encoder", "transformer",
                 *make(no_tokenizer, tmp_path))
    assert_one_line_failure(result, 1, (fragment,))


def test_bigru_refuses_text_weights_and_unsupported_encodings(tiny_synth, tmp_path, tiny_bert):
    from test_hostile_inputs import assert_one_line_failure

    result = run("train", "--data", tiny_synth, "--out", tmp_path / "a", *TINY, "--text-weights", tiny_bert)
    assert_one_line_failure(result, 1, ("the bi-GRU encoders start from random weights",))

