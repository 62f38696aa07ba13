"""Batched building blocks of the part-level alignments, written for all pairs at once.

The trick that keeps every alignment one GEMM away from its bound: an attention-weighted
sum ``x^ = sum_k a_k x_k`` is never materialised per pair.  Its dot product with a query
is ``sum_k a_k (q . x_k)`` (a GEMM computed once), and its norm is ``a^T G a`` with the
small Gram matrix ``G = X X^T`` of each item.  So scoring T texts against I images costs
``[T*M, D] x [D, I*K]`` plus ``O(T*I*K*M)`` work, never a ``[T, I, D]`` tensor.
"""

from __future__ import annotations

import torch

_NEG = -1.0e4  # masked logit: exp() underflows to exactly 0 in fp32, so padding adds nothing


def masked_softmax(logits: torch.Tensor, mask: torch.Tensor | None, dim: int) -> torch.Tensor:
    """Softmax over ``dim`` that gives exactly 0 to masked slots (and all-0 to empty rows)."""
    if mask is None:
        return torch.softmax(logits.float(), dim=dim)
    weights = torch.softmax(logits.float().masked_fill(~mask, _NEG), dim=dim)
    return weights * mask.to(weights.dtype)


def gram(vectors: torch.Tensor) -> torch.Tensor:
    """``[N, S, D] -> [N, S, S]`` inner products of each item's vectors."""
    return vectors @ vectors.transpose(1, 2)


def pooled_norm(weights: torch.Tensor, gram_matrix: torch.Tensor, equation: str) -> torch.Tensor:
    """``||sum_s w_s x_s||`` for every pair, from the weights and the per-item Gram matrix."""
    squared = torch.einsum(equation, weights, gram_matrix, weights)
    return squared.clamp_min(1e-12).sqrt()
