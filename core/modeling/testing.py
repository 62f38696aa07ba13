"""Conformance checks for plugin authors: call them on a factory in your own tests.

    from mia.core.modeling.testing import check_alignment
    check_alignment(MyAlignment)          # raises AssertionError naming the broken promise

They hold every component to what mia relies on, the same checks the built-in plugins'
tests run.  An alignment: a batched score equals the score of each pair alone, padded
phrases never move a score, it reads parts or phrases only if it declares so, gradients
reach what it reads, bf16 autocast runs, its gallery side can be prepared once, and it
exports to ONNX with the same scores.  An image or text encoder: the shapes of the
contract, batch independence, padding that changes nothing, bf16 autocast, gradients, and
an ONNX export that matches PyTorch.  A chunker: a pure function of the caption.
"""

from __future__ import annotations

import io
import warnings
from copy import deepcopy as copy_module
from typing import Callable

import numpy as np
import torch
from torch import nn

from mia.core.modeling.alignment import undeclared_reads
from mia.core.modeling.features import ImageFeatures, TextFeatures, select_texts
from mia.core.modeling.model import factory_options

TOLERANCE = 1e-4


def _features(texts: int, images: int, dim: int, parts: int, phrases: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    image = ImageFeatures(torch.randn(images, dim, generator=g), torch.randn(images, parts, dim, generator=g))
    mask = torch.rand(texts, phrases, generator=g) > 0.3
    if phrases:
        mask[0, :] = False
        mask[0, 0] = True  # one phrase only
        mask[-1] = False  # a caption without phrases
    return TextFeatures(torch.randn(texts, dim, generator=g), torch.randn(texts, phrases, dim, generator=g), mask), image


def _close(a: torch.Tensor, b: torch.Tensor, what: str, tolerance: float = TOLERANCE) -> None:
    difference = (a.float() - b.float()).abs().max().item() if a.numel() else 0.0
    assert difference <= tolerance * max(1.0, b.float().abs().max().item() if b.numel() else 1.0), \
        f"{what}: differs by {difference:.3g}"


def _onnx_session(module: nn.Module, args: tuple, names: list[str], dynamic: dict):
    """``module`` exported (TorchScript-based exporter, ``dynamic`` axes) into an ONNX Runtime session."""
    import onnxruntime

    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, args, buffer, input_names=names, dynamic_axes=dynamic, opset_version=18, dynamo=False)
    return onnxruntime.InferenceSession(buffer.getvalue(), providers=["CPUExecutionProvider"])


def _run(session, names: list[str], args) -> list[np.ndarray]:
    """Feed by name: the exporter drops inputs a graph never reads."""
    wanted = {i.name for i in session.get_inputs()}
    return session.run(None, {n: a.numpy() for n, a in zip(names, args) if n in wanted})


class _Scoring(nn.Module):
    """An alignment's similarity over plain tensors (what the exported scorer holds)."""

    def __init__(self, alignment):
        super().__init__()
        self.alignment = alignment

    def forward(self, text_global, text_phrases, phrase_mask, image_global, image_parts):
        return self.alignment.similarity(TextFeatures(text_global, text_phrases, phrase_mask),
                                         ImageFeatures(image_global, image_parts))


def check_alignment(factory: Callable, embed_dim: int = 16, parts: int = 4, phrases: int = 5,
                    export: bool = True) -> None:
    """Every promise an alignment plugin makes (see the module docstring)."""
    alignment = factory(embed_dim).eval()
    name = type(alignment).__name__
    text, image = _features(3, 4, embed_dim, parts, phrases, seed=0)
    with torch.no_grad():
        batched = alignment.similarity(text, image)
        assert batched.shape == (3, 4), f"{name}.similarity: shape {tuple(batched.shape)}, expected (3, 4) = [T, I]"
        assert torch.isfinite(batched).all(), f"{name}.similarity: not finite"
        for t in range(3):
            for i in range(4):
                alone = alignment.similarity(select_texts(text, slice(t, t + 1)),
                                             ImageFeatures(image.global_[i:i + 1], image.parts[i:i + 1]))
                _close(alone[0, 0], batched[t, i], f"{name}: pair ({t}, {i}) scored alone vs in a batch")
        padded = text.phrases.clone()
        padded[~text.phrase_mask] = 1e4  # huge vectors in padded slots must change nothing
        _close(alignment.similarity(TextFeatures(text.global_, padded, text.phrase_mask), image), batched,
               f"{name}: padded phrase slots moved a score")
        prepared = alignment.score_prepared(text, alignment.prepare_gallery(image))
        _close(prepared, batched, f"{name}: score_prepared(prepare_gallery()) vs similarity()")
        check_declarations(alignment, text, image, batched)
        no_phrases = TextFeatures(text.global_, text.phrases[:, :0], text.phrase_mask[:, :0])
        assert torch.isfinite(alignment.similarity(no_phrases, image)).all(), f"{name}: not finite with M = 0 phrases"
    _check_gradients(alignment, name, embed_dim, parts, phrases)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        low = alignment.similarity(text, image)
    assert torch.isfinite(low.float()).all(), f"{name}: not finite under bf16 autocast"
    _close(low, batched, f"{name}: bf16 autocast vs fp32", tolerance=0.05)
    if export:
        check_alignment_export(alignment, embed_dim, parts, phrases)


def check_declarations(alignment, text: TextFeatures, image: ImageFeatures, scores: torch.Tensor) -> None:
    """An alignment reads parts or phrases only if it declares ``uses_parts`` / ``uses_phrases``
    (the export leaves undeclared inputs out of the scorer)."""
    problems = undeclared_reads(alignment, text, image, scores)
    assert not problems, f"{type(alignment).__name__} reads {' and '.join(problems)} without declaring it"


def _check_gradients(alignment, name: str, embed_dim: int, parts: int, phrases: int) -> None:
    """Every input that moves the scores gets a finite, non-zero gradient."""
    text, image = _features(3, 4, embed_dim, parts, phrases, seed=1)
    inputs = {"text global": text.global_, "text phrases": text.phrases, "image global": image.global_,
              "image parts": image.parts}
    with torch.no_grad():
        base = alignment.similarity(text, image)
        read = {}
        for label, tensor in inputs.items():
            original = tensor.clone()
            tensor.add_(torch.randn_like(tensor))
            read[label] = not torch.allclose(alignment.similarity(text, image), base)
            tensor.copy_(original)
    for label, tensor in inputs.items():
        tensor.requires_grad_(read[label])
    alignment.train()
    alignment.similarity(text, image).sum().backward()
    alignment.eval()
    for label, tensor in inputs.items():
        if read[label]:
            assert tensor.grad is not None and torch.isfinite(tensor.grad).all() and tensor.grad.abs().sum() > 0, \
                f"{name}: the {label} move its scores but get no finite gradient"


def check_alignment_export(alignment, embed_dim: int = 16, parts: int = 4, phrases: int = 5) -> None:
    """The alignment's similarity as an ONNX graph with dynamic query and gallery sizes gives
    PyTorch's scores (at two sizes)."""
    name = type(alignment).__name__
    names = ["text_global", "text_phrases", "phrase_mask", "image_global", "image_parts"]
    dynamic = {"text_global": {0: "queries"}, "text_phrases": {0: "queries", 1: "phrases"},
               "phrase_mask": {0: "queries", 1: "phrases"}, "image_global": {0: "gallery"},
               "image_parts": {0: "gallery"}}
    module = _Scoring(alignment).eval()
    text, image = _features(2, 3, embed_dim, parts, phrases, seed=2)
    session = _onnx_session(module, (*text, *image), names, dynamic)
    for texts, images, seed in ((1, 2, 3), (4, 5, 4)):
        text, image = _features(texts, images, embed_dim, parts, phrases, seed=seed)
        (got,) = _run(session, names, (*text, *image))
        with torch.no_grad():
            expected = module(*text, *image)
        _close(torch.from_numpy(got), expected, f"{name}: ONNX Runtime vs PyTorch ({texts} x {images})")


def _check_trains(encoder: nn.Module, name: str, *inputs) -> None:
    """A training-mode forward and backward (on a copy: batch norm statistics move) reaches
    the parameters."""
    copy = copy_module(encoder).train()
    outputs = copy(*inputs)
    (outputs[0].float().sum() + outputs[1].float().sum()).backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in copy.parameters()), f"{name}: no gradients"


class _ImageTower(nn.Module):
    def __init__(self, encoder):
        super().__init__()
        self.encoder = encoder

    def forward(self, images):
        return self.encoder(images)


def check_image_encoder(factory: Callable, embed_dim: int = 16, num_parts: int = 4, size: tuple[int, int] = (64, 32),
                        export: bool = True) -> None:
    """Shapes ``[B, D]`` and ``[B, K, D]``, batch independence in eval mode, gradients, bf16
    autocast, a valid ``preprocessing`` declaration, and an ONNX export matching PyTorch.
    A factory that takes ``image_size`` is built for ``size``."""
    encoder = factory(embed_dim, num_parts, **factory_options(factory, image_size=size)).eval()
    name = type(encoder).__name__
    preprocessing = getattr(encoder, "preprocessing", None)
    if preprocessing is not None:
        assert len(preprocessing.mean) == 3 and len(preprocessing.std) == 3 and min(preprocessing.std) > 0, \
            f"{name}.preprocessing: mean and std need 3 values, std > 0"
        assert len(preprocessing.size) == 2 and min(preprocessing.size) >= 32, f"{name}.preprocessing: size (H, W) >= 32"
    images = torch.randn(3, 3, *size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        global_, parts = encoder(images)
        assert global_.shape == (3, embed_dim), f"{name}: global {tuple(global_.shape)}, expected (3, {embed_dim})"
        assert parts.shape == (3, num_parts, embed_dim), \
            f"{name}: parts {tuple(parts.shape)}, expected (3, {num_parts}, {embed_dim})"
        one_global, one_parts = encoder(images[1:2])
        _close(one_global[0], global_[1], f"{name}: an image encoded alone vs in a batch")
        _close(one_parts[0], parts[1], f"{name}: an image's parts alone vs in a batch")
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = encoder(images)
        assert all(torch.isfinite(t.float()).all() for t in low), f"{name}: not finite under bf16 autocast"
    _check_trains(encoder, name, images)
    if export:
        session = _onnx_session(_ImageTower(encoder).eval(), (images,), ["images"], {"images": {0: "batch"}})
        got_global, got_parts = _run(session, ["images"], (images,))
        _close(torch.from_numpy(got_global), global_, f"{name}: ONNX Runtime vs PyTorch (global)")
        _close(torch.from_numpy(got_parts), parts, f"{name}: ONNX Runtime vs PyTorch (parts)")


class _TextTower(nn.Module):
    def __init__(self, encoder):
        super().__init__()
        self.encoder = encoder

    def forward(self, tokens, phrases):
        return self.encoder(tokens, phrases)


def check_text_encoder(factory: Callable, vocab_size: int = 40, embed_dim: int = 16,
                       phrase_encoding: str = "sequences", export: bool = True, **options) -> None:
    """Shapes of ``(global, phrases, mask)``, padding that changes nothing (longer captions,
    more phrase slots, M = 0), bf16 autocast, gradients, an ONNX export matching PyTorch."""
    encoder = factory(vocab_size, embed_dim, phrase_encoding=phrase_encoding, **options).eval()
    name = type(encoder).__name__
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(2, vocab_size, (3, 7), generator=g)
    tokens[0, 4:] = 0
    high = 8 if phrase_encoding == "spans" else vocab_size  # spans hold 1-based token positions
    phrases = torch.randint(1, high, (3, 2, 3), generator=g)
    phrases[0, 1] = 0  # a padded phrase slot
    if phrase_encoding == "spans":
        phrases[0] = phrases[0].clamp(max=4)  # positions inside the shorter caption
    with torch.no_grad():
        global_, vectors, mask = encoder(tokens, phrases)
        assert global_.shape == (3, embed_dim) and vectors.shape == (3, 2, embed_dim) and mask.shape == (3, 2), \
            f"{name}: shapes {tuple(global_.shape)}, {tuple(vectors.shape)}, {tuple(mask.shape)}"
        assert mask.tolist() == [[True, False], [True, True], [True, True]], f"{name}: phrase_mask marks padded slots"
        wider = encoder(torch.cat([tokens, torch.zeros(3, 5, dtype=tokens.dtype)], 1),
                        torch.cat([phrases, torch.zeros(3, 2, 3, dtype=phrases.dtype)], 1))
        _close(wider[0], global_, f"{name}: padding a caption with more pad tokens changed its vector")
        _close(wider[1][:, :2][mask], vectors[mask], f"{name}: more phrase slots changed the phrase vectors")
        no_phrases = encoder(tokens, phrases[:, :0])
        assert no_phrases[1].shape == (3, 0, embed_dim), f"{name}: M = 0 phrases gives {tuple(no_phrases[1].shape)}"
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = encoder(tokens, phrases)
        assert torch.isfinite(low[0].float()).all(), f"{name}: not finite under bf16 autocast"
    _check_trains(encoder, name, tokens, phrases)
    if export:
        names = ["tokens", "phrases"]
        session = _onnx_session(_TextTower(encoder).eval(), (tokens, phrases), names,
                                {"tokens": {0: "batch", 1: "words"}, "phrases": {0: "batch", 1: "slots", 2: "width"}})
        got = _run(session, names, (tokens, phrases))
        _close(torch.from_numpy(got[0]), global_, f"{name}: ONNX Runtime vs PyTorch (global)")
        _close(torch.from_numpy(got[1]), vectors, f"{name}: ONNX Runtime vs PyTorch (phrases)")


def check_chunker(factory: Callable, option: str | None = None,
                  captions=("A man in a red jacket and blue jeans carrying a black backpack.",
                            "The woman wears a long white dress and brown sandals.", "", "!!!")) -> None:
    """A chunker returns lists of non-empty strings, the same every time (phrases are cached
    per data set and recomputed by the deployed runtime)."""
    chunker = factory(option)
    for caption in captions:
        phrases = chunker(caption)
        assert isinstance(phrases, list) and all(isinstance(p, str) and p.strip() for p in phrases), \
            f"chunker on {caption!r}: expected a list of non-empty strings, got {phrases!r}"
        assert chunker(caption) == phrases, f"chunker on {caption!r}: not deterministic"
