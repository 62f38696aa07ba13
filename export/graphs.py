"""The four exported graphs: image tower, text tower, gallery preparation, scorer.

Retrieval encodes the gallery once and the queries once, then scores every pair, so the
model leaves PyTorch as separate graphs rather than one; the gallery graph computes once
per gallery what every query chunk's scoring reads.  Inputs a model does not read are
left out (a global-only model's gallery graph takes no stripes, its scorer no phrases).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from mia.core.modeling.features import ImageFeatures, TextFeatures
from mia.core.modeling.model import MiaModel, fuse


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


class GalleryGraph(nn.Module):
    """Encoded gallery -> what each active alignment's scoring reads of it
    (``prepare_gallery``: unit columns, log-norms, Gram matrices), computed once per gallery
    and not once per query chunk, as in PyTorch."""

    def __init__(self, model: MiaModel, with_parts: bool):
        super().__init__()
        self.alignments = nn.ModuleList([model.alignments[name] for name in model.active])
        self.with_parts = with_parts

    def forward(self, *inputs):
        image_global = inputs[0]
        image = ImageFeatures(image_global, inputs[1] if self.with_parts else image_global.unsqueeze(1))
        return tuple(tensor for alignment in self.alignments for tensor in alignment.prepare_gallery(image))


class ScorerGraph(nn.Module):
    """Encoded queries x prepared gallery -> fused ``similarity [Q, G]`` of the active alignments.

    The alignments sit in a list, not under their names: ``global`` is a Python keyword
    and TorchScript cannot load a submodule attribute of that name.
    """

    def __init__(self, model: MiaModel, with_phrases: bool, counts: list[int]):
        super().__init__()
        self.alignments = nn.ModuleList([model.alignments[name] for name in model.active])
        self.weights = [model.spec.weight(name) for name in model.active]
        self.with_phrases, self.counts = with_phrases, counts

    def forward(self, *inputs):
        inputs = list(inputs)
        text_global = inputs.pop(0)
        if self.with_phrases:
            phrases, mask = inputs.pop(0), inputs.pop(0)
        else:
            phrases = text_global.new_zeros(text_global.shape[0], 0, text_global.shape[1])
            mask = torch.zeros(text_global.shape[0], 0, dtype=torch.bool, device=text_global.device)
        text = TextFeatures(text_global, phrases, mask)
        scores, start = [], 0
        for weight, alignment, count in zip(self.weights, self.alignments, self.counts):
            scores.append((weight, alignment.score_prepared(text, tuple(inputs[start:start + count]))))
            start += count
        return fuse(scores)


def prepared_layout(model: MiaModel) -> list[tuple[str, dict[int, str]]]:
    """Name and gallery-dependent axes of each prepared gallery tensor (``ALIGNMENT_i``),
    found by preparing galleries of two sizes: an axis that grows with the gallery is
    ``gallery`` (or ``gallery_xK`` for K entries per image, e.g. stripes laid out as columns)."""
    spec = model.spec
    shapes = []
    with torch.no_grad():
        for size in (3, 5):
            image = ImageFeatures(torch.ones(size, spec.embed_dim), torch.ones(size, spec.num_parts, spec.embed_dim))
            shapes.append({name: [tuple(t.shape) for t in tensors]
                           for name, tensors in model.prepare_gallery(image).items()})
    layout = []
    for name in model.active:
        for i, (small, large) in enumerate(zip(shapes[0][name], shapes[1][name])):
            axes = {axis: "gallery" if a == 3 else f"gallery_x{a // 3}" for axis, (a, b) in enumerate(zip(small, large))
                    if a != b}
            layout.append((f"{name}_{i}", axes))
    return layout


def graph_io(model: MiaModel) -> dict[str, GraphIO]:
    with_phrases, with_parts = model.scoring_needs
    text_in = ("tokens", "phrases") if with_phrases else ("tokens",)
    text_out = ("text_global", "text_phrases", "phrase_mask") if with_phrases else ("text_global",)
    image_features = ("image_global",) + (("image_parts",) if with_parts else ())
    layout = prepared_layout(model)
    prepared = tuple(name for name, _ in layout)
    dynamic = {
        "images": {0: "batch"}, "image_global": {0: "gallery"}, "image_parts": {0: "gallery"},
        "tokens": {0: "batch", 1: "words"}, "phrases": {0: "batch", 1: "phrases", 2: "phrase_words"},
        "text_global": {0: "queries"}, "text_phrases": {0: "queries", 1: "phrases"},
        "phrase_mask": {0: "queries", 1: "phrases"}, "similarity": {0: "queries", 1: "gallery"},
        **dict(layout),
    }
    return {
        "image_encoder": GraphIO(("images",), ("image_global", "image_parts"), dynamic),
        "text_encoder": GraphIO(text_in, text_out, dynamic),
        "gallery": GraphIO(image_features, prepared, dynamic),
        "scorer": GraphIO(text_out + prepared, ("similarity",), dynamic),
    }


def build_graphs(model: MiaModel) -> dict[str, nn.Module]:
    with_phrases, with_parts = model.scoring_needs
    prepared = [name.rsplit("_", 1)[0] for name, _ in prepared_layout(model)]
    counts = [prepared.count(name) for name in model.active]
    graphs = {
        "image_encoder": ImageGraph(model),
        "text_encoder": TextGraph(model) if with_phrases else SentenceGraph(model),
        "gallery": GalleryGraph(model, with_parts),
        "scorer": ScorerGraph(model, with_phrases, counts),
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
        prepared = {f"{name}_{i}": tensor for name, tensors in model.prepare_gallery(image).items()
                    for i, tensor in enumerate(tensors)}
    encoded = {"text_global": text.global_, "text_phrases": text.phrases, "phrase_mask": text.phrase_mask,
               "image_global": image.global_, "image_parts": image.parts, **prepared}
    return {"images": images, "tokens": tokens, "phrases": phrase_ids, **encoded}
