"""The bi-GRU text encoder: word embeddings + a bidirectional GRU (as in MIA).

Padding is handled without ``pack_padded_sequence`` (which breaks ONNX export): the
backward direction runs over each sequence reversed *within its own length*, so it never
reads padding before real words, and outputs are max-pooled over real words only
(``bigru``) or read at the ends, the two directions' final hidden states (``bigru-final``,
the paper's sentence vector; docs/method.md sets the two side by side).
Noun phrases go through the same GRU as short texts of their own (``sequences``, the
paper's way) or are max-pooled from the caption's outputs at their positions (``spans``).
"""

from __future__ import annotations

import torch
from torch import nn

from mia.core.base.errors import MiaError
from mia.core.modeling.text_pooling import TokenTextEncoder

PHRASE_ENCODINGS = ("sequences", "spans")  # the first is the default


class BiGRUTextEncoder(TokenTextEncoder):
    """Token ids (0 = padding) -> (sentence, phrases, phrase mask), pooled over real words
    (``pooling``: ``max``, or ``ends`` for the final hidden states)."""

    def __init__(self, vocab_size: int, embed_dim: int, phrase_encoding: str = "sequences",
                 word_dim: int = 300, hidden: int = 256, pooling: str = "max"):
        super().__init__()
        self.phrase_encoding, self.pooling = phrase_encoding, pooling
        self.embedding = nn.Embedding(vocab_size, word_dim, padding_idx=0)
        self.forward_gru = nn.GRU(word_dim, hidden, batch_first=True)
        self.backward_gru = nn.GRU(word_dim, hidden, batch_first=True)
        self.sentence_head = nn.Sequential(nn.Linear(2 * hidden, embed_dim), nn.BatchNorm1d(embed_dim))
        self.phrase_head = nn.Linear(2 * hidden, embed_dim)

    def outputs(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``[N, L]`` ids -> (per-word outputs ``[N, L, 2H]``, real-word mask ``[N, L]``)."""
        mask = tokens != 0
        lengths = mask.sum(dim=1, keepdim=True)
        positions = torch.arange(tokens.shape[1], device=tokens.device).unsqueeze(0)
        reverse = lengths - 1 - positions
        reverse = torch.where(reverse >= 0, reverse, positions)  # pads stay where they are
        embedded = self.embedding(tokens)
        forward_out, _ = self.forward_gru(embedded)
        reversed_in = embedded.gather(1, reverse.unsqueeze(-1).expand(-1, -1, embedded.shape[-1]))
        backward_rev, _ = self.backward_gru(reversed_in)
        backward_out = backward_rev.gather(1, reverse.unsqueeze(-1).expand(-1, -1, backward_rev.shape[-1]))
        return torch.cat([forward_out, backward_out], dim=-1), mask


def _random_start(weights: str | None) -> None:
    if weights:
        raise MiaError(f"--text-weights {weights}: the bi-GRU encoders start from random weights; "
                       "use --text-encoder transformer for a pretrained tower")


def bigru(vocab_size: int, embed_dim: int, phrase_encoding: str = "sequences", weights: str | None = None,
          config: dict | None = None) -> BiGRUTextEncoder:
    _random_start(weights)
    return BiGRUTextEncoder(vocab_size, embed_dim, phrase_encoding)


def bigru_final(vocab_size: int, embed_dim: int, phrase_encoding: str = "sequences", weights: str | None = None,
                config: dict | None = None) -> BiGRUTextEncoder:
    _random_start(weights)
    return BiGRUTextEncoder(vocab_size, embed_dim, phrase_encoding, pooling="ends")


#: the public re-implementation's GRU width per direction (``models/texts/gru_backbone.py``)
WIDE_HIDDEN = 1024


def bigru_wide(vocab_size: int, embed_dim: int, phrase_encoding: str = "sequences", weights: str | None = None,
               config: dict | None = None) -> BiGRUTextEncoder:
    _random_start(weights)
    return BiGRUTextEncoder(vocab_size, embed_dim, phrase_encoding, hidden=WIDE_HIDDEN)


bigru.phrase_encodings = bigru_final.phrase_encodings = bigru_wide.phrase_encodings = PHRASE_ENCODINGS
