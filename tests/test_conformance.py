"""mia.core.modeling.testing: the built-in plugins pass the conformance checks that plugin authors
run, the checks catch broken components, and an undeclared read of parts is an export error."""

from __future__ import annotations

import re
from functools import partial

import pytest
import torch

from mia.core.modeling.alignment import PreparedAlignment
from mia.core.base.errors import MiaError
from mia.core.modeling.features import ImageFeatures, TextFeatures
from mia.core.registry.plugins import get_plugin_manager
from mia.core.modeling.testing import check_alignment, check_chunker, check_image_encoder, check_text_encoder
from mia.plugins.alignments.fine_align import FineAlignment
from mia.plugins.alignments.global_align import GlobalAlignment
from mia.plugins.alignments.part_align import PartAlignment
from mia.plugins.bigru import bigru, bigru_final
from mia.plugins.chunkers import rule_chunker
from mia.plugins.torchvision_encoders import mobilenet_v2, resnet18
from test_plugins import _plugin


@pytest.mark.parametrize("factory", [GlobalAlignment, PartAlignment, partial(PartAlignment, rga_mlp="parts"), FineAlignment],
                         ids=["global", "part", "part-mlp-on-parts", "fine"])
def test_builtin_alignments_conform(factory):
    check_alignment(factory)


@pytest.mark.parametrize("factory", [resnet18, mobilenet_v2], ids=["resnet18", "mobilenet_v2"])
def test_builtin_image_encoders_conform(factory):
    check_image_encoder(factory)


@pytest.mark.parametrize("name", ["timm:test_vit", "timm:test_resnet"])
def test_timm_encoders_conform(name):
    """A ViT (stripes from its patch rows) and a CNN (from its feature map)."""
    from mia.core.modeling.model import encoder_factory

    check_image_encoder(encoder_factory("image-encoder", name))


def test_clip_image_tower_conforms(tiny_clip):
    from mia.core.modeling.model import encoder_factory

    check_image_encoder(encoder_factory("image-encoder", f"clip:{tiny_clip}"))


@pytest.mark.parametrize("encoding", ["spans", "sequences"])
def test_clip_text_tower_conforms(tiny_clip, encoding):
    from mia.core.modeling.model import encoder_factory

    check_text_encoder(encoder_factory("text-encoder", f"clip:{tiny_clip}"), phrase_encoding=encoding)


@pytest.mark.parametrize("factory", [bigru, bigru_final])
@pytest.mark.parametrize("encoding", ["sequences", "spans"])
def test_bigru_conforms(factory, encoding):
    check_text_encoder(factory, phrase_encoding=encoding)


@pytest.mark.parametrize("encoding", ["spans", "sequences"])
def test_transformer_conforms(tiny_bert, encoding):
    from mia.plugins.text_transformer import transformer

    check_text_encoder(transformer, phrase_encoding=encoding, weights=str(tiny_bert))


@pytest.mark.parametrize("option", [None, "strict"])
def test_rule_chunker_conforms(option):
    check_chunker(rule_chunker, option)


class SneakyAlignment(PreparedAlignment):
    """Reads the stripes without declaring ``uses_parts``: its export would get stand-ins."""

    def __init__(self, embed_dim: int):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(()))

    def prepare_gallery(self, image: ImageFeatures):
        return (torch.nn.functional.normalize(image.parts.mean(1), dim=-1).T,)

    def score_prepared(self, text: TextFeatures, gallery):
        return self.scale * torch.nn.functional.normalize(text.global_, dim=-1) @ gallery[0]


class LeakyAlignment(GlobalAlignment):
    """Lets padded phrase slots into its score."""

    uses_phrases = True

    def score_prepared(self, text: TextFeatures, gallery):
        return super().score_prepared(text, gallery) + text.phrases.sum(dim=(1, 2))[:, None] * 1e-3


@pytest.mark.parametrize("factory, message", [
    (SneakyAlignment, "SneakyAlignment reads image parts (uses_parts) without declaring it"),
    (LeakyAlignment, "LeakyAlignment: padded phrase slots moved a score"),
])
def test_the_checks_catch_broken_alignments(factory, message):
    with pytest.raises(AssertionError, match=re.escape(message)):
        check_alignment(factory, export=False)


def test_an_undeclared_read_of_parts_is_an_export_error(tmp_path):
    from mia.core.modeling.model import ModelSpec, create_model
    from mia.core.data.tokenizer import Vocabulary
    from mia.export.exporting import export_model

    def register_alignments(register):
        register("sneaky", SneakyAlignment)

    get_plugin_manager().register(_plugin("sneaky-plugin", register_alignments=register_alignments))
    spec = ModelSpec(image_encoder="resnet18", alignments=["sneaky"], embed_dim=16, image_size=(64, 32),
                     vocab_size=10, num_classes=2)
    model = create_model(spec)
    vocab = Vocabulary(["<pad>", "<unk>", *(f"w{i}" for i in range(8))])
    checkpoint = tmp_path / "sneaky.pt"
    torch.save({"format": "mia-checkpoint/1", "spec": spec.to_dict(), "config": {"data": "x"},
                "tokenizer": vocab.to_dict(), "model": model.state_dict(), "active": ["sneaky"]}, checkpoint)
    with pytest.raises(MiaError, match=r"alignment 'sneaky' reads image parts \(uses_parts\) without declaring it"):
        export_model(checkpoint, tmp_path / "export", "onnx", exporter="torchscript", log=lambda m: None)
    assert not (tmp_path / "export").exists()
