"""``clip:ARCH``: the image tower and the text tower of an open_clip model, each usable
alone (with any tower on the other side) or together.

Image: an open_clip ViT, built for the run's ``--image-size`` (open_clip resamples the
position embeddings of pretrained weights to the new patch grid).  Its patch tokens are
taken into CLIP's joint space with the tower's own projection, as its pooled class token
is; their grid rows become the K stripes (the grid must cut into ``--num-parts`` equal
bands) and the class token the global vector.

Text: CLIP's causal transformer over open_clip's BPE tokens (:func:`mia.core.data.hf_tokenizer.
clip_tokenizer`, carried to the runtime as a ``tokenizer.json``).  The sentence is the
end-of-text token, as in CLIP; a noun phrase is, by default, the last of its tokens in the
caption's own forward (``spans``: under causal attention the only one that has read the
whole phrase), or the end-of-text token of the phrase encoded alone (``sequences``).
Padding follows the end token, which never attends to it.

Weights (``--image-weights`` / ``--text-weights``): an open_clip pretrained tag
(``openai``, ``laion2b_s34b_b88k``), a Hugging Face model id (``timm/vit_base_patch16_
clip_224.openai``) or a local file; hub weights are read from the Hugging Face cache,
downloaded there only when the machine may go online.  A tag's activation (OpenAI's
QuickGELU) and normalisation travel with the tower as its ``config_dict``, so a
checkpoint rebuilds the same network without the weights.  Needs the extra:
``pip install 'mia-reid[clip]'``.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import nn

from mia.core.base.errors import MiaError
from mia.core.data.hf_tokenizer import clip_tokenizer
from mia.core.data.preprocess import ImagePreprocessing
from mia.core.modeling.pretrained import fetch_url, hub_file
from mia.core.modeling.text_pooling import TokenTextEncoder
from mia.plugins.timm_encoders import WEIGHTS_SUFFIXES, close_names
from mia.plugins.torchvision_encoders import StripeEncoder, check_patch_grid

EXTRA = "pip install 'mia-reid[clip]'"
#: what open_clip looks for in a model repository, in its order
HUB_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin")
PHRASE_ENCODINGS = ("spans", "sequences")  # the first is the default


def _open_clip(option: str):
    try:
        import open_clip
    except ImportError:
        raise MiaError(f"{option} clip:ARCH needs the CLIP extra: {EXTRA}") from None
    return open_clip


def _model_config(open_clip, arch: str, option: str) -> dict:
    """open_clip's configuration of ``arch`` (one of ``open_clip.list_models()``)."""
    config = open_clip.get_model_config(arch) if ":" not in arch else None
    if config is None:
        raise MiaError(f"{option} clip:{arch}: open_clip has no model '{arch}'{close_names(arch, open_clip.list_models())}")
    return config


@contextlib.contextmanager
def _quiet():
    """open_clip reports through the root logger ("initialized randomly"): not for mia's output."""
    previous = logging.root.manager.disable
    logging.disable(max(previous, logging.WARNING))
    try:
        yield
    finally:
        logging.disable(previous)


def _weights_file(open_clip, arch: str, weights: str, option: str) -> tuple[Path, str, dict]:
    """(file, where training starts, what the weights were trained with) for a tag, a hub id or a file."""
    label = f"{option} {weights}"
    path = Path(weights).expanduser()
    if path.is_file() or weights.startswith((".", "/", "~")) or weights.endswith(WEIGHTS_SUFFIXES):
        if not path.is_file():
            raise MiaError(f"{label}: no such file")
        return path, f"file:{path.name}", {}
    tag = open_clip.get_pretrained_cfg(arch, weights)
    if tag:
        settings = {"quick_gelu": bool(tag.get("quick_gelu", False)), "mean": list(tag["mean"]), "std": list(tag["std"])}
        repo, filename = os.path.split(tag.get("hf_hub", ""))
        if repo:
            return hub_file(repo, (filename,) if filename else HUB_FILES, label), f"open_clip:{arch}.{weights}", settings
        file = Path("~/.cache/clip").expanduser() / os.path.basename(urlparse(tag["url"]).path)  # open_clip's own cache
        if not file.is_file():
            fetch_url(tag["url"], file, label)
        return file, f"open_clip:{arch}.{weights}", settings
    repo = weights.removeprefix("hf-hub:")
    if repo.count("/") == 1:  # a Hugging Face model id, ORGANISATION/NAME
        return hub_file(repo, HUB_FILES, label), f"hf-hub:{repo}", {}
    tags = open_clip.list_pretrained_tags_by_model(arch)
    raise MiaError(f"{label}: neither a file, a Hugging Face model id nor a pretrained tag of clip:{arch} "
                   f"({', '.join(tags) if tags else 'it has no pretrained tags'})")


def _clip_model(open_clip, arch: str, weights: str | None, option: str, config: dict | None,
                image_size=None) -> tuple[nn.Module, str | None, dict]:
    """The open_clip model of ``arch`` (random, or with ``weights``), its weights' source and
    the settings that rebuild it: from the weights' tag when training starts, else from
    ``config`` (a checkpoint's)."""
    file, source, settings = _weights_file(open_clip, arch, weights, option) if weights else (None, None, config or {})
    with _quiet():
        model = open_clip.create_model(arch, force_image_size=tuple(image_size) if image_size else None,
                                       force_quick_gelu=settings.get("quick_gelu", False))
        if file is not None:
            try:
                open_clip.load_checkpoint(model, str(file))
            except (RuntimeError, ValueError, KeyError, OSError) as exc:
                first = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
                raise MiaError(f"{option} {weights}: not weights of clip:{arch} ({first})") from None
    preprocess = open_clip.get_model_preprocess_cfg(model)
    settings = {"quick_gelu": bool(settings.get("quick_gelu", False)),
                "mean": list(settings.get("mean", preprocess["mean"])), "std": list(settings.get("std", preprocess["std"]))}
    return model, source, settings


class Attention(nn.Module):
    """open_clip's ``nn.MultiheadAttention`` (self-attention, batch first) with the same
    parameters under the same names, as plain tensor operations whose shapes follow the
    input.  ``nn.MultiheadAttention`` exports with the batch and the caption length of
    the example baked into its reshapes (and its fused inference path does not export at
    all); this form exports with both dynamic, and computes the same."""

    def __init__(self, attention: nn.MultiheadAttention):
        super().__init__()
        self.num_heads = attention.num_heads
        self.in_proj_weight, self.in_proj_bias = attention.in_proj_weight, attention.in_proj_bias
        self.out_proj = attention.out_proj

    def forward(self, query, key=None, value=None, need_weights=False, attn_mask=None):
        q, k, v = (t.unflatten(-1, (self.num_heads, -1)).transpose(1, 2)
                   for t in nn.functional.linear(query, self.in_proj_weight, self.in_proj_bias).chunk(3, dim=-1))
        mixed = nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)
        return self.out_proj(mixed.transpose(1, 2).flatten(2)), None


def _exportable(tower: nn.Module) -> nn.Module:
    """``tower`` with every ``nn.MultiheadAttention`` replaced by :class:`Attention`."""
    for name, module in list(tower.named_modules()):
        if isinstance(module, nn.MultiheadAttention):
            if not module.batch_first or not module._qkv_same_embed_dim or module.bias_k is not None:
                raise MiaError(f"open_clip attention '{name}' is not the self-attention mia can export")
            parent, _, child = name.rpartition(".")
            setattr(tower.get_submodule(parent) if parent else tower, child, Attention(module))
    return tower


# --------------------------------------------------------------------------- image tower


def clip_image_encoder(arch: str):
    """``clip:ARCH`` -> the image-encoder factory of open_clip model ``ARCH``'s ViT."""
    open_clip = _open_clip("--image-encoder")
    vision = _model_config(open_clip, arch, "--image-encoder")["vision_cfg"]
    if "timm_model_name" in vision or isinstance(vision.get("layers"), (list, tuple)) \
            or vision.get("attentional_pool") or vision.get("pool_type", "tok") not in ("tok", "avg"):
        raise MiaError(f"--image-encoder clip:{arch}: its image tower is not a plain open_clip ViT (patch tokens "
                       "and a class token), which is what mia cuts into stripes; for a CNN use timm:NAME")

    def factory(embed_dim: int, num_parts: int, weights: str | None = None, image_size=None,
                config: dict | None = None) -> ClipImageEncoder:
        model, source, settings = _clip_model(open_clip, arch, weights, "--image-weights", config, image_size)
        return ClipImageEncoder(model.visual, f"clip:{arch}", embed_dim, num_parts, source, settings)

    return factory


clip_image_encoder.family = True


class ClipImageEncoder(StripeEncoder):
    """An open_clip ViT -> (global ``[B, D]``, stripes ``[B, K, D]``); see the module doc."""

    def __init__(self, visual: nn.Module, label: str, embed_dim: int, num_parts: int, weights_source: str | None,
                 settings: dict):
        visual = _exportable(visual)
        visual.output_tokens = True  # forward gives (pooled, patch tokens)
        visual.patch_dropout = nn.Identity()  # stripes need every patch, in training too
        width = visual.proj.shape[1] if visual.proj is not None else visual.transformer.width
        super().__init__(visual, width, embed_dim, num_parts, weights_source)
        self.grid = tuple(visual.grid_size)
        size = tuple(visual.image_size)
        self.preprocessing = ImagePreprocessing(tuple(settings["mean"]), tuple(settings["std"]), size)
        self.config_dict = settings
        check_patch_grid(label, size, self.grid, num_parts)

    def pooled_rows(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pooled, tokens = self.trunk(images)  # [B, E] (projected), [B, rows x columns, width]
        if self.trunk.proj is not None:
            tokens = tokens @ self.trunk.proj  # the patches in the joint space the class token is in
        return pooled, tokens.unflatten(1, self.grid).mean(dim=2).transpose(1, 2)


# --------------------------------------------------------------------------- text tower


def clip_text_encoder(arch: str):
    """``clip:ARCH`` -> the text-encoder factory of open_clip model ``ARCH``'s text tower."""
    open_clip = _open_clip("--text-encoder")
    text = _model_config(open_clip, arch, "--text-encoder")["text_cfg"]
    if "hf_model_name" in text:
        raise MiaError(f"--text-encoder clip:{arch}: its text tower is a Hugging Face model; use --text-encoder "
                       "transformer --text-weights NAME_OR_DIR")
    if text.get("no_causal_mask") or text.get("embed_cls") or "hf_tokenizer_name" in text \
            or text.get("pool_type", "argmax") not in ("argmax", "eos", "last") \
            or text.get("tokenizer_kwargs", {}).get("clean", "lower") != "lower":
        raise MiaError(f"--text-encoder clip:{arch}: not a CLIP text tower (causal, read at its end-of-text token, "
                       "with CLIP's lower-casing BPE tokenizer)")
    context = int(text.get("context_length", 77))

    def factory(vocab_size: int, embed_dim: int, phrase_encoding: str = PHRASE_ENCODINGS[0], weights: str | None = None,
                config: dict | None = None) -> ClipTextEncoder:
        model, source, settings = _clip_model(open_clip, arch, weights, "--text-weights", config)
        return ClipTextEncoder(getattr(model, "text", model), embed_dim, phrase_encoding, source, settings)

    def build_tokenizer(texts, min_freq: int, weights: str | None):
        """CLIP's own BPE (the training captions do not change it), from open_clip's vocabulary file."""
        return clip_tokenizer(open_clip.tokenizer.default_bpe(), context)

    factory.phrase_encodings = PHRASE_ENCODINGS
    factory.build_tokenizer = build_tokenizer
    return factory


clip_text_encoder.family = True


class ClipTextEncoder(TokenTextEncoder):
    """Token ids (CLIP id + 1, 0 = padding) -> (sentence, phrases, phrase mask)."""

    pooling = "last"  # the end-of-text token: the last real one

    def __init__(self, tower: nn.Module, embed_dim: int, phrase_encoding: str, weights_source: str | None,
                 settings: dict):
        super().__init__()
        self.token_embedding = tower.token_embedding
        self.positional_embedding = tower.positional_embedding
        self.transformer = _exportable(tower.transformer)
        self.ln_final = tower.ln_final
        self.text_projection = tower.text_projection
        self.register_buffer("causal", tower.attn_mask, persistent=False)  # additive, -inf above the diagonal
        self.phrase_encoding = phrase_encoding
        self.weights_source = weights_source
        self.config_dict = {"quick_gelu": settings["quick_gelu"]}  # the normalisation is the image side's
        projection = self.text_projection
        width = projection.out_features if isinstance(projection, nn.Linear) else \
            projection.shape[1] if projection is not None else self.transformer.width
        self.sentence_head = nn.Sequential(nn.Linear(width, embed_dim), nn.BatchNorm1d(embed_dim))
        self.phrase_head = nn.Linear(width, embed_dim)

    def pretrained_parameters(self):
        """What ``--text-lr-mult`` slows down: the tower, not the fresh heads."""
        return [p for name, p in self.named_parameters() if not name.startswith(("sentence_head.", "phrase_head."))]

    def outputs(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-token outputs in CLIP's joint space ``[N, L, E]`` and the real-token mask."""
        mask = tokens != 0
        length = tokens.shape[1]
        x = self.token_embedding((tokens - 1).clamp(min=0)) + self.positional_embedding[:length]
        x = self.ln_final(self.transformer(x, attn_mask=self.causal[:length, :length]))
        if isinstance(self.text_projection, nn.Linear):
            return self.text_projection(x), mask
        return (x @ self.text_projection if self.text_projection is not None else x), mask
