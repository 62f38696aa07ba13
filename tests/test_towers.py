"""Modern towers: any timm image model (``timm:NAME``) and open_clip's image and text towers
(``clip:ARCH``) trained, evaluated, exported with the recall check and searched through
the torch-free runtime; CLIP's tokenizer carried as a tokenizer.json that tokenizes as
open_clip does; weights found offline in the Hugging Face cache, and one line when they
are not there.  Nothing is downloaded: timm's own test models and a tiny open_clip
configuration, with random weights, stand in for the real ones."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from mia.core.base.errors import MiaError
from mia.export.manifest import read_manifest
from conftest import TINY_CLIP
from test_cli_train import TINY, run
from test_hostile_inputs import assert_one_line_failure

TIMM_VIT = "timm:test_vit"  # 16-pixel patches: a 4x2 grid at TINY's 64x32
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]  # OpenAI's statistics, open_clip's default


def options(image: str = "resnet18", text: str = "bigru", num_parts: int = 2) -> list:
    """TINY with these towers and stripes (TINY trains resnet18 at 64x32)."""
    return [image if option == "resnet18" else option for option in TINY] + \
        ["--text-encoder", text, "--num-parts", num_parts]


def train_and_export(root, tiny_synth, *tower_options, align="global,part,fine"):
    trained = run("train", "--data", tiny_synth, "--out", root / "run", "--epochs", 1, *tower_options, "--align", align)
    assert trained.exit_code == 0, trained.output
    exported = run("export", "onnx", "--checkpoint", root / "run" / "best.pt", "--out", root / "export",
                   "--exporter", "torchscript", "--check-data", tiny_synth, "--device", "cpu")
    assert exported.exit_code == 0, exported.output
    assert "recall check passed" in exported.output
    return root


@pytest.fixture(scope="module")
def timm_run(tiny_synth, tmp_path_factory):
    return train_and_export(tmp_path_factory.mktemp("timm"), tiny_synth, *options(TIMM_VIT), align="global,part")


@pytest.fixture(scope="module")
def clip_run(tiny_clip, tiny_synth, tmp_path_factory):
    return train_and_export(tmp_path_factory.mktemp("clip"), tiny_synth,
                            *options(f"clip:{tiny_clip}", f"clip:{tiny_clip}"), align="global,fine")


SEARCH_WITHOUT_TORCH = """
import sys
from mia.export.runtime import Retriever
retriever = Retriever(sys.argv[1], device="cpu")
gallery = retriever.encode_images(sys.argv[2:])
hits = retriever.search("A man in a black coat, blue jeans & white shoes!", gallery, top_k=3)
assert len(hits) == 3, hits
leaked = [name for name in ("torch", "timm", "open_clip", "ftfy", "transformers") if name in sys.modules]
assert not leaked, leaked
print(type(retriever.tokenizer).__name__)
"""


def search_without_torch(export, tiny_synth) -> str:
    images = [str(p) for p in sorted((tiny_synth / "imgs").rglob("*.jpg"))[:4]]
    done = subprocess.run([sys.executable, "-c", SEARCH_WITHOUT_TORCH, str(export), *images],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_list_shows_the_families_and_how_their_names_are_formed():
    images, texts = run("list", "image-encoder"), run("list", "text-encoder")
    assert "  timm: any timm image model as timm:NAME, e.g. timm:resnet50" in images.output
    assert "  clip: the image tower of an open_clip ViT as clip:ARCH, e.g. clip:ViT-B-16" in images.output
    assert "  clip: the text tower of an open_clip model as clip:ARCH" in texts.output
    assert run("weights", "list").exit_code == 0  # the families have no torchvision weights to list


def test_a_timm_vit_trains_exports_and_is_searched_without_torch(timm_run, tiny_synth):
    spec = torch.load(timm_run / "run" / "best.pt", weights_only=True)["spec"]
    assert spec["image_encoder"] == TIMM_VIT and spec["image_size"] == [64, 32]
    manifest = read_manifest(timm_run / "export")
    assert manifest["image_encoder"] == TIMM_VIT
    assert (manifest["image"]["mean"], manifest["image"]["size"]) == ([0.5, 0.5, 0.5], [64, 32])  # its pretrained_cfg
    assert manifest["graphs"]["image_encoder"]["inputs"][0]["shape"][0] == "batch"
    assert search_without_torch(timm_run / "export", tiny_synth) == "Vocabulary"


def test_clip_towers_train_export_and_are_searched_without_torch(clip_run, tiny_synth):
    spec = torch.load(clip_run / "run" / "best.pt", weights_only=True)["spec"]
    assert spec["image_config"] == {"quick_gelu": False, "mean": CLIP_MEAN, "std": [0.26862954, 0.26130258, 0.27577711]}
    assert spec["text_config"] == {"quick_gelu": False}
    assert spec["phrase_encoding"] == "spans" and spec["vocab_size"] == 49409
    manifest = read_manifest(clip_run / "export")
    assert manifest["image"]["mean"] == CLIP_MEAN
    assert manifest["text"]["tokenizer"] == "hf" and "tokenizer.json" in manifest["files"]
    tokens = manifest["graphs"]["text_encoder"]["inputs"][0]
    assert tokens["name"] == "tokens" and all(isinstance(axis, str) for axis in tokens["shape"])
    assert search_without_torch(clip_run / "export", tiny_synth) == "HFTokenizer"


CAPTIONS = [
    "A woman in a white coat and black trousers, carrying a red handbag.",
    "THE MAN WEARS A Black T-shirt; Blue-Jeans & white sneakers!!!",
    "He's wearing a 'denim' jacket -- they're \"grey\" shoes... (approx. 1.80m, 100%)",
    "Une femme en robe d'été, café au lait; naïve Zoë; Straße, İstanbul, ΟΔΥΣΣΕΥΣ, Москва",
    "穿着红色外套的女人，黑色裤子 and a bag 😀👍🏽",
    "curly ‘quotes’ and “double” ones, the ﬁne ﬂower, ＦＵＬＬ　ｗｉｄｔｈ",
    "  tabs\tand\nnew lines\r\n and   spaces\u00a0no-break\u2003em  ",
    "html &amp; entities: &lt;b&gt; &quot;x&quot; &#39;y&#39; &amp;amp;",
    "",
    "!!!",
    "a man " * 60,  # far past the context: cut, the end token kept
]


@pytest.mark.parametrize("source", ["export", "ViT-B-16"])
def test_the_clip_tokenizer_tokenizes_exactly_as_open_clip(clip_run, source):
    """The exported tokenizer.json (the tiny tower's 32-token context) and ViT-B-16's (77)."""
    import open_clip

    from mia.core.data.hf_tokenizer import HFTokenizer
    from mia.core.modeling.model import create_tokenizer

    if source == "export":
        ours = HFTokenizer.from_file(clip_run / "export" / "tokenizer.json")
        reference = open_clip.get_tokenizer(TINY_CLIP)
    else:
        ours, reference = create_tokenizer(f"clip:{source}", [], 1), open_clip.get_tokenizer(source)
    for caption in CAPTIONS:
        expected = reference([caption])[0].tolist()
        expected = expected[:expected.index(reference.eot_token_id) + 1]
        assert [i - 1 for i in ours.encode(caption, 500)] == expected, caption
    assert len(ours.encode(CAPTIONS[-1], 500)) == reference.context_length


def test_the_clip_towers_compute_what_open_clip_computes(tiny_clip, tmp_path):
    """From the same weights file: the image tower's pooled vector is open_clip's
    encode_image, and the text tower at the end token is open_clip's encode_text."""
    import open_clip

    from mia.core.modeling.text_pooling import masked_last
    from mia.plugins.clip_towers import clip_image_encoder, clip_text_encoder

    reference = open_clip.create_model(tiny_clip).eval()
    torch.save(reference.state_dict(), tmp_path / "tiny-clip.pt")
    image = clip_image_encoder(tiny_clip)(16, 2, weights=str(tmp_path / "tiny-clip.pt")).eval()
    text = clip_text_encoder(tiny_clip)(0, 16, weights=str(tmp_path / "tiny-clip.pt")).eval()
    assert image.weights_source == text.weights_source == "file:tiny-clip.pt"
    images = torch.randn(3, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    ids = open_clip.get_tokenizer(tiny_clip)(CAPTIONS[:3])
    tokens = torch.where(torch.arange(ids.shape[1]) <= ids.argmax(dim=1, keepdim=True), ids + 1, 0)
    with torch.no_grad():
        pooled, rows = image.pooled_rows(images)
        words, mask = text.outputs(tokens)
        torch.testing.assert_close(pooled, reference.encode_image(images), atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(masked_last(words, mask), reference.encode_text(ids), atol=1e-5, rtol=1e-4)
    assert rows.shape == (3, 24, 4)  # the 4x4 patch grid's rows, in the joint space


def test_either_clip_tower_pairs_with_any_other(tiny_clip):
    from mia.core.modeling.model import ModelSpec, create_model

    for image, text in ((f"clip:{tiny_clip}", "bigru"), ("resnet18", f"clip:{tiny_clip}")):
        spec = ModelSpec(image_encoder=image, text_encoder=text, embed_dim=16, num_parts=2, image_size=(64, 32),
                         vocab_size=50, num_classes=2, alignments=["global", "part", "fine"])
        model = create_model(spec).eval()
        with torch.no_grad():
            features = model.encode_image(torch.randn(2, 3, 64, 32))
            sentence = model.encode_text(torch.tensor([[5, 6, 7, 0]]), torch.tensor([[[1, 2], [3, 0]]]))
        assert features.parts.shape == (2, 2, 16) and sentence.phrases.shape == (1, 2, 16)
        assert torch.isfinite(model.similarity(sentence, features)).all()


def test_a_clip_towers_settings_rebuild_it(tiny_clip):
    """OpenAI's weights were trained with QuickGELU: the setting is the tower's config, so a
    checkpoint (which carries it, not the weights' name) rebuilds the same network."""
    import open_clip

    from mia.plugins.clip_towers import clip_image_encoder, clip_text_encoder

    settings = {"quick_gelu": True, "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}
    image = clip_image_encoder(tiny_clip)(16, 2, image_size=(64, 32), config=settings)
    text = clip_text_encoder(tiny_clip)(0, 16, config=settings)
    assert image.config_dict == settings and text.config_dict == {"quick_gelu": True}
    for tower in (image, text):
        assert any(isinstance(m, open_clip.transformer.QuickGELU) for m in tower.modules())
    assert image.preprocessing.mean == (0.5, 0.5, 0.5) and image.preprocessing.size == (64, 32)


# --------------------------------------------------------------------------- weights, offline


def hub_cache(root, repo: str, filename: str, state: dict):
    """A Hugging Face cache under ``root`` holding ``state`` as ``repo``'s ``filename``, laid
    out as ``hf download`` leaves it."""
    from safetensors.torch import save_file

    folder = root / "hub" / f"models--{repo.replace('/', '--')}"
    commit = "0" * 40
    (folder / "snapshots" / commit).mkdir(parents=True)
    (folder / "refs").mkdir()
    (folder / "refs" / "main").write_text(commit)
    save_file({k: v.contiguous() for k, v in state.items()}, folder / "snapshots" / commit / filename)
    return root


def test_timm_weights_by_tag_load_offline_from_the_hugging_face_cache(tmp_path, monkeypatch):
    import timm

    from mia.core.modeling.model import encoder_factory

    state = timm.create_model("test_vit").state_dict()  # at 160x160 with its classifier, as timm publishes it
    state["patch_embed.proj.bias"] = torch.full_like(state["patch_embed.proj.bias"], 0.25)
    monkeypatch.setenv("HF_HOME", str(hub_cache(tmp_path, "timm/test_vit.r160_in1k", "model.safetensors", state)))
    for weights in ("imagenet", "r160_in1k"):
        encoder = encoder_factory("image-encoder", TIMM_VIT)(16, 2, weights=weights, image_size=(64, 32))
        assert torch.equal(encoder.trunk.patch_embed.proj.bias, state["patch_embed.proj.bias"])
        assert encoder.trunk.pos_embed.shape[1] == 1 + 4 * 2  # resampled to the run's grid
        assert encoder.weights_source == "timm:test_vit.r160_in1k"


def test_clip_weights_by_hub_id_load_offline_from_the_hugging_face_cache(tiny_clip, tmp_path, monkeypatch):
    import open_clip

    from mia.core.modeling.model import encoder_factory

    state = open_clip.create_model(tiny_clip).state_dict()
    monkeypatch.setenv("HF_HOME", str(hub_cache(tmp_path, "someone/tiny-clip", "open_clip_model.safetensors", state)))
    image = encoder_factory("image-encoder", f"clip:{tiny_clip}")(16, 2, weights="someone/tiny-clip", image_size=(96, 32))
    text = encoder_factory("text-encoder", f"clip:{tiny_clip}")(0, 16, weights="hf-hub:someone/tiny-clip")
    assert torch.equal(image.trunk.conv1.weight, state["visual.conv1.weight"])
    assert image.trunk.positional_embedding.shape[0] == 1 + 6 * 2  # 4x4 resampled to the 6x2 grid of 96x32
    assert torch.equal(text.token_embedding.weight, state["token_embedding.weight"])
    assert image.weights_source == text.weights_source == "hf-hub:someone/tiny-clip"


@pytest.mark.parametrize("tower_options, fragments", [
    (options(TIMM_VIT) + ["--image-weights", "imagenet"],
     ("--image-weights imagenet: timm/test_vit.r160_in1k (model.safetensors or pytorch_model.bin) is not in the "
      "Hugging Face cache", "hf download timm/test_vit.r160_in1k model.safetensors",
      "models--timm--test_vit.r160_in1k folder into", "[offline]")),
    (options("clip:ViT-B-16") + ["--image-weights", "openai"],
     ("--image-weights openai: timm/vit_base_patch16_clip_224.openai (open_clip_model.safetensors or "
      "open_clip_pytorch_model.bin) is not in the Hugging Face cache", "[offline]")),
    (options(text="clip:ViT-B-16") + ["--text-weights", "laion2b_s34b_b88k"],
     ("--text-weights laion2b_s34b_b88k: laion/CLIP-ViT-B-16-laion2B-s34B-b88K", "[offline]")),
], ids=["timm", "clip-image", "clip-text"])
def test_offline_without_the_weights_is_one_line_naming_file_and_cache(tiny_synth, tmp_path, monkeypatch,
                                                                        tower_options, fragments):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "empty-cache"))
    result = run("train", "--data", tiny_synth, "--out", tmp_path / "run", *tower_options)
    error = assert_one_line_failure(result, 1, fragments)
    assert str(tmp_path / "empty-cache" / "hub") in error


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("tower_options, fragments", [
    (options("timm:resnt50"), ("--image-encoder timm:resnt50: timm has no model 'resnt50'; close names: resnet50",)),
    (options("clip:ViT-B-61"), ("--image-encoder clip:ViT-B-61: open_clip has no model 'ViT-B-61'; close names: ViT-B-16",)),
    (options(text="clip:vit-b-16"), ("--text-encoder clip:vit-b-16: open_clip has no model", "close names: ViT-B-16")),
    (options(TIMM_VIT, num_parts=3),
     ("--num-parts 3: timm:test_vit at 64x32 has a 4x2 patch grid (16-pixel patches) whose 4 rows do not cut "
      "into 3 equal stripes; use --num-parts 1, 2 or 4, or an --image-size whose height is a multiple of 48",)),
    (options("timm"), ("--image-encoder timm: names a family; give one of its members, any timm image model as timm:NAME",)),
    (options("clip:RN50"), ("its image tower is not a plain open_clip ViT", "for a CNN use timm:NAME")),
    (options(TIMM_VIT) + ["--image-weights", "in22k"], ("--image-weights in22k: neither a file nor a pretrained tag "
                                                        "of timm:test_vit (r160_in1k)",)),
], ids=["timm-name", "clip-name", "clip-text-name", "grid", "family-alone", "clip-cnn", "timm-tag"])
def test_bad_tower_names_and_grids_are_one_line(tiny_synth, tmp_path, tower_options, fragments):
    result = run("train", "--data", tiny_synth, "--out", tmp_path / "run", *tower_options)
    assert_one_line_failure(result, 1, fragments)


@pytest.mark.parametrize("module, tower_options, extra", [
    ("timm", options(TIMM_VIT), "--image-encoder timm:NAME needs the timm extra: pip install 'mia-reid[timm]'"),
    ("open_clip", options(text="clip:ViT-B-16"), "--text-encoder clip:ARCH needs the CLIP extra: pip install 'mia-reid[clip]'"),
])
def test_without_the_extra_naming_such_an_encoder_says_which_to_install(tiny_synth, tmp_path, monkeypatch,
                                                                        module, tower_options, extra):
    monkeypatch.setitem(sys.modules, module, None)  # importing it now fails, as when it is not installed
    result = run("train", "--data", tiny_synth, "--out", tmp_path / "run", *tower_options)
    assert_one_line_failure(result, 1, (extra,))


def test_a_member_given_to_a_single_encoder_is_refused():
    from mia.core.modeling.model import encoder_factory

    with pytest.raises(MiaError, match=r"'resnet18' is a single image-encoder, not a family"):
        encoder_factory("image-encoder", "resnet18:wide")
