"""Built-in text encoder: word embeddings + a bidirectional GRU (as in MIA).

Padding is handled without ``pack_padded_sequence`` (which breaks ONNX export): the
backward direction runs over each sequence reversed *within its own length*, so it never
reads padding before real words, and outputs are max-pooled over real words only.
Sentences and noun phrases go through the same GRU.
"""

from __future__ import annotations

import torch
from torch import nn

from mia.core.hookspecs import hookimpl

_NEG = -1.0e4  # "minus infinity" that survives bf16 and ONNX


class BiGRUTextEncoder(nn.Module):
    def __init__(self, vocab_size: int, embed_dim: int, word_dim: int = 300, hidden: int = 256):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, word_dim, padding_idx=0)
        self.forward_gru = nn.GRU(word_dim, hidden, batch_first=True)
        self.backward_gru = nn.GRU(word_dim, hidden, batch_first=True)
        self.sentence_head = nn.Sequential(nn.Linear(2 * hidden, embed_dim), nn.BatchNorm1d(embed_dim))
        self.phrase_head = nn.Linear(2 * hidden, embed_dim)

    def pooled(self, tokens: torch.Tensor) -> torch.Tensor:
        """``[N, L]`` ids -> ``[N, 2H]`` max over real words (zeros for an all-pad row)."""
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
        outputs = torch.cat([forward_out, backward_out], dim=-1).masked_fill(~mask.unsqueeze(-1), _NEG)
        pooled = outputs.max(dim=1).values
        return pooled * mask.any(dim=1, keepdim=True).to(pooled.dtype)

    def forward(self, tokens: torch.Tensor, phrases: torch.Tensor):
        global_ = self.sentence_head(self.pooled(tokens))
        batch, slots, words = phrases.shape
        phrase_mask = (phrases != 0).any(dim=-1)
        if slots == 0:
            return global_, global_.new_zeros(batch, 0, global_.shape[1]), phrase_mask
        phrase_vectors = self.phrase_head(self.pooled(phrases.reshape(batch * slots, words)))
        return global_, phrase_vectors.reshape(batch, slots, -1), phrase_mask


@hookimpl
def register_text_encoders(register):
    register("bigru", BiGRUTextEncoder, aliases=("bi-gru", "gru"),
             description="300-d word embeddings + 1-layer bi-GRU, masked max-pool (MIA)")
