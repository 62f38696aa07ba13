"""Pooling shared by text encoders: exportable (plain gathers and masked reductions, no
data-dependent shapes) and safe in bf16 (no ``-inf``), and the one way a token-level tower
becomes a sentence vector and phrase vectors (:class:`TokenTextEncoder`)."""

from __future__ import annotations

import torch
from torch import nn

NEG = -1.0e4  # "minus infinity" that survives bf16 and ONNX


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values [..., L, H]`` over positions where ``mask [..., L]`` is true (0 if none)."""
    weights = mask.unsqueeze(-1).to(values.dtype)
    return (values * weights).sum(dim=-2) / weights.sum(dim=-2).clamp(min=1.0)


def masked_max(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Max of ``values [..., L, H]`` over positions where ``mask [..., L]`` is true (0 if none)."""
    pooled = values.masked_fill(~mask.unsqueeze(-1), NEG).max(dim=-2).values
    return pooled * mask.any(dim=-1, keepdim=True).to(pooled.dtype)


def masked_last(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``values [..., L, H]`` at the last position where ``mask [..., L]`` is true (0 if none).

    How a causal tower (CLIP's text transformer) summarises a span: its last token is the
    only one that has read all of it, as the end-of-text token has read the whole caption.
    Real positions come first and padding after, so the last one is at ``count - 1``.
    """
    last = (mask.long().sum(dim=-1, keepdim=True) - 1).clamp(min=0)  # [..., 1]
    index = last.unsqueeze(-1).expand(*values.shape[:-2], 1, values.shape[-1])
    pooled = values.gather(-2, index).squeeze(-2)
    return pooled * mask.any(dim=-1, keepdim=True).to(pooled.dtype)


def masked_ends(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """A bidirectional recurrent tower's final hidden states: the first half of ``values
    [..., L, 2H]`` (the forward direction) at the last real position, the second half (the
    backward direction, which read the span from its end) at the first (0 if none).

    How MIA's bi-GRU makes its sentence vector (the paper and its public re-implementation).
    """
    half = values.shape[-1] // 2
    forward_final = masked_last(values[..., :half], mask)
    backward_final = values[..., 0, half:] * mask.any(dim=-1, keepdim=True).to(values.dtype)
    return torch.cat([forward_final, backward_final], dim=-1)


POOLS = {"max": masked_max, "mean": masked_mean, "last": masked_last, "ends": masked_ends}


def pool_positions(outputs: torch.Tensor, positions: torch.Tensor, mode: str) -> torch.Tensor:
    """Pool ``outputs [N, L, H]`` at 1-based ``positions [N, M, P]`` (0 = padding) -> ``[N, M, H]``.

    ``mode`` names one of :data:`POOLS`; a phrase without positions gives zeros.
    """
    batch, slots, width = positions.shape
    index = (positions - 1).clamp(min=0).reshape(batch, slots * width, 1).expand(-1, -1, outputs.shape[-1])
    gathered = outputs.gather(1, index).reshape(batch, slots, width, outputs.shape[-1])
    return POOLS[mode](gathered, positions != 0)


class TokenTextEncoder(nn.Module):
    """A text encoder over a token-level tower. Subclasses give ``outputs(tokens) ->
    (per-token [N, L, H], real-token mask [N, L])``, ``sentence_head``, ``phrase_head``,
    ``phrase_encoding`` and ``pooling`` (a name in :data:`POOLS`).

    The sentence vector pools the caption's tokens. Noun phrases are pooled from a pass of
    their own (``sequences``) or from the caption's outputs at their positions (``spans``):
    either way the same pooling, so the two encodings differ only in what the tower saw.
    """

    pooling = "max"
    phrase_encoding = "sequences"

    def pooled(self, tokens: torch.Tensor) -> torch.Tensor:
        """``[N, L]`` ids -> ``[N, H]`` pooled over real tokens (zeros for an all-pad row)."""
        return POOLS[self.pooling](*self.outputs(tokens))

    def forward(self, tokens: torch.Tensor, phrases: torch.Tensor):
        words, mask = self.outputs(tokens)
        global_ = self.sentence_head(POOLS[self.pooling](words, mask))
        batch, slots, width = phrases.shape
        phrase_mask = (phrases != 0).any(dim=-1)
        if slots == 0:
            return global_, global_.new_zeros(batch, 0, global_.shape[1]), phrase_mask
        if self.phrase_encoding == "spans":
            vectors = pool_positions(words, phrases, self.pooling)
        else:
            vectors = self.pooled(phrases.reshape(batch * slots, width)).reshape(batch, slots, -1)
        return global_, self.phrase_head(vectors), phrase_mask
