"""The three exported graphs: image tower, text tower, scorer.

Retrieval encodes the gallery once and the queries once, then scores every pair, so the
model leaves PyTorch as three graphs rather than one.  Inputs a model does not read are
left out (a global-only model's scorer takes no phrases or stripes).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from mia.core.features import ImageFeatures, TextFeatures
from mia.core.model import MiaModel, fuse


@dataclass(frozen=True)
class GraphIO:
    """Input and output names of one graph, with which axes are dynamic."""

    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    dynamic: dict  # name -> {axis: symbolic name}


class ImageGraph(nn.Module):
    """``images [B, 3, H, W]`` -> ``image_global [B, D]``, ``image_parts [B, K, D]``."""

    def __init__(self, model: MiaModel):
        super().__init__()
        self.encoder = model.image_encoder

    def forward(self, images):
        return self.encoder(images)


class TextGraph(nn.Module):
    """``tokens [B, L]``, ``phrases [B, M, P]`` -> ``text_global``, ``text_phrases``, ``phrase_mask``."""

    def __init__(self, model: MiaModel):
        super().__init__()
        self.encoder = model.text_encoder

    def forward(self, tokens, phrases):
        return self.encoder(tokens, phrases)


class SentenceGraph(nn.Module):
    """``tokens [B, L]`` -> ``text_global [B, D]``, for models whose scoring reads no phrases."""

    def __init__(self, model: MiaModel):
        super().__init__()
        self.encoder = model.text_encoder

    def forward(self, tokens):
        return self.encoder(tokens, tokens.new_zeros(tokens.shape[0], 0, 1))[0]


class ScorerGraph(nn.Module):
    """Encoded queries x encoded gallery -> fused ``similarity [Q, G]`` of the active alignments.

    The alignments sit in a list, not under their names: ``global`` is a Python keyword
    and TorchScript cannot load a submodule attribute of that name.
    """

    def __init__(self, model: MiaModel, with_phrases: bool, with_parts: bool):
        super().__init__()
        self.alignments = nn.ModuleList([model.alignments[name] for name in model.active])
        self.weights = [model.spec.weight(name) for name in model.active]
        self.with_phrases, self.with_parts = with_phrases, with_parts

    def forward(self, *inputs):
        inputs = list(inputs)
        text_global = inputs.pop(0)
        if self.with_phrases:
            phrases, mask = inputs.pop(0), inputs.pop(0)
        else:
            phrases = text_global.new_zeros(text_global.shape[0], 0, text_global.shape[1])
            mask = torch.zeros(text_global.shape[0], 0, dtype=torch.bool, device=text_global.device)
        image_global = inputs.pop(0)
        parts = inputs.pop(0) if self.with_parts else image_global.unsqueeze(1)
        text, image = TextFeatures(text_global, phrases, mask), ImageFeatures(image_global, parts)
        return fuse((weight, alignment.similarity(text, image))
                    for weight, alignment in zip(self.weights, self.alignments))


def graph_io(model: MiaModel) -> dict[str, GraphIO]:
    with_phrases, with_parts = model.scoring_needs
    text_in = ("tokens", "phrases") if with_phrases else ("tokens",)
    text_out = ("text_global", "text_phrases", "phrase_mask") if with_phrases else ("text_global",)
    scorer_in = ("text_global",) + (("text_phrases", "phrase_mask") if with_phrases else ()) \
        + ("image_global",) + (("image_parts",) if with_parts else ())
    dynamic = {
        "images": {0: "batch"}, "image_global": {0: "gallery"}, "image_parts": {0: "gallery"},
        "tokens": {0: "batch", 1: "words"}, "phrases": {0: "batch", 1: "phrases", 2: "phrase_words"},
        "text_global": {0: "queries"}, "text_phrases": {0: "queries", 1: "phrases"},
        "phrase_mask": {0: "queries", 1: "phrases"}, "similarity": {0: "queries", 1: "gallery"},
    }
    return {
        "image_encoder": GraphIO(("images",), ("image_global", "image_parts"), dynamic),
        "text_encoder": GraphIO(text_in, text_out, dynamic),
        "scorer": GraphIO(scorer_in, ("similarity",), dynamic),
    }


def build_graphs(model: MiaModel) -> dict[str, nn.Module]:
    with_phrases, with_parts = model.scoring_needs
    graphs = {
        "image_encoder": ImageGraph(model),
        "text_encoder": TextGraph(model) if with_phrases else SentenceGraph(model),
        "scorer": ScorerGraph(model, with_phrases, with_parts),
    }
    return {name: graph.eval() for name, graph in graphs.items()}


def example_inputs(model: MiaModel, batch: int, words: int, phrases: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Fresh random inputs for every graph (gallery size = batch + 1 to keep axes distinct)."""
    g = torch.Generator().manual_seed(seed)
    spec = model.spec
    height, width = spec.image_size
    tokens = torch.randint(2, spec.vocab_size, (batch, words), generator=g) if spec.vocab_size > 2 \
        else torch.ones(batch, words, dtype=torch.long)
    tokens[0, words // 2:] = 0  # one padded caption
    # phrase entries are token ids, or 1-based positions in the caption (``spans``)
    high = words + 1 if model.text_settings().phrase_encoding == "spans" else spec.vocab_size
    phrase_ids = torch.randint(0, high, (batch, phrases, spec.phrase_words), generator=g)
    phrase_ids[:, :, 0] = torch.clamp(phrase_ids[:, :, 0], min=1)
    phrase_ids[0, phrases // 2:] = 0  # padded phrase slots
    images = torch.randn(batch + 1, 3, height, width, generator=g)
    with torch.no_grad():
        image = model.encode_image(images)
        text = model.encode_text(tokens, phrase_ids)
    encoded = {"text_global": text.global_, "text_phrases": text.phrases, "phrase_mask": text.phrase_mask,
               "image_global": image.global_, "image_parts": image.parts}
    return {"images": images, "tokens": tokens, "phrases": phrase_ids, **encoded}
