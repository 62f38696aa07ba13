"""Attention pooling for all text-image pairs at once, the building block of ``part`` and
``fine``.

Both alignments score a query vector ``q`` against an attention-weighted sum of vectors
``x_k`` (stripes of an image, or phrases of a caption): ``cos(q, sum_k a_k x_k)`` with
``a = softmax(logits)``.  Three identities keep that one matrix product away from its
bound, without ever materialising a ``[T, I, D]`` tensor:

* write ``x_k = n_k x^_k`` (norm times unit vector); the cosine is then
  ``sum_k u_k (q^ . x^_k) / sqrt(u^T G^ u)`` with ``u_k = a_k n_k`` and ``G^`` the small
  Gram matrix of the unit vectors of each item;
* that ratio does not change when ``u`` is scaled, so the softmax's denominator cancels:
  ``u_k = exp(logits_k + log n_k - shift)`` for any per-pair ``shift`` (the maximum, so
  that the largest term is exactly 1 and nothing overflows or underflows);
* the cosines ``q^ . x^_k`` of all pairs come from one GEMM computed once.

That leaves, per pair, one exponential and a few multiply-adds per stripe or phrase,
where a literal softmax, weighted sum and norm cost three times the memory passes.

Layout: pair tensors keep the gallery axis innermost (``[..., K, I]``), so every
reduction over the few stripes (K) or phrases (M) runs vectorised over many gallery items.
Padded phrases get ``log n = -1e4``: they drop out of the maximum, and their weight
(floored at e^-80 of the largest, see ``_FLOOR``) vanishes in every fp32 sum.
"""

from __future__ import annotations

import torch

from mia.core.runtime import fused_pool
from mia.core.runtime.policy import fused_kernels as fused_scoring
from mia.core.runtime.policy import needs_autograd

_NEG = -1.0e4  # log-scale of a padded slot, far below every real exponent
# Exponents are clamped here before exp(): a term e^-80 below the largest (which is 1)
# does not change an fp32 sum, and exp() of anything lower takes the CPU's slow path
# (denormals, out-of-range inputs); padded slots and hopeless stripes land here.
_FLOOR = -80.0


def _shifted_exp_(exponent: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """``exp(max(exponent - shift, -80))`` in place: the unnormalised attention weights."""
    return exponent.sub_(shift).clamp_min_(_FLOOR).exp_()


def unit_and_norm(vectors: torch.Tensor, eps: float = 1e-6) -> tuple[torch.Tensor, torch.Tensor]:
    norm = vectors.norm(dim=-1).clamp_min(eps)
    return vectors / norm.unsqueeze(-1), norm


def stripe_state(parts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """What :func:`stripe_pool` needs of a gallery's stripes ``[I, K, D]``, computed once:
    unit stripes as GEMM columns ``[D, K*I]`` (stripe-major, gallery innermost), their
    log-norms ``[K, I]`` and each item's unit Gram matrix ``[K, K, I]``."""
    unit, norm = unit_and_norm(parts.float())
    columns = unit.transpose(0, 1).reshape(-1, unit.shape[-1]).T.contiguous()
    gram = (unit @ unit.transpose(1, 2)).permute(1, 2, 0).contiguous()
    return columns, norm.log().T.contiguous(), gram


def phrase_state(phrases: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """What :func:`phrase_pool` needs of the queries' phrases ``[T, M, D]``: unit phrases,
    log-norms ``[T, M]`` (padded slots ``-1e4``) and each query's unit Gram matrix ``[T, M, M]``."""
    unit, norm = unit_and_norm(phrases.float())
    log_norm = norm.log().masked_fill(~mask, _NEG)
    return unit, log_norm, unit @ unit.transpose(1, 2)


def stripe_pool(logits: torch.Tensor, cosines: torch.Tensor, log_norm: torch.Tensor,
                gram: torch.Tensor) -> torch.Tensor:
    """``cos(q, sum_k a_k v_k)`` per pair, pooling over the stripe axis -2 of ``[..., K, I]``.

    ``logits`` give the attention ``a = softmax_k``, ``cosines`` are ``q^ . v^_k``,
    ``log_norm [K, I]`` and ``gram [K, K, I]`` come from :func:`stripe_state`.  Per device:
    one fused kernel when scoring on CUDA (``core.fused_pool``), few kernels when training
    there (a step is bound by kernel launches), unrolled fused multiply-adds over
    ``[..., I]`` rows on the CPU (a 6-long axis reduced per element is slow there).
    """
    if fused_scoring(logits, cosines, log_norm, gram):
        return fused_pool.stripe_pool(logits, cosines, log_norm, gram, _FLOOR)
    return (_stripe_pool_batched if logits.is_cuda else _stripe_pool_unrolled)(logits, cosines, log_norm, gram)


def _stripe_pool_batched(logits, cosines, log_norm, gram):
    exponent = logits + log_norm
    weights = _shifted_exp_(exponent, exponent.detach().amax(-2, keepdim=True))
    numerator = (weights * cosines).sum(-2)
    mixed = torch.einsum("...ki,kli->...li", weights, gram)
    return numerator / (weights * mixed).sum(-2).clamp_min(1e-12).sqrt()


def _stripe_pool_unrolled(logits, cosines, log_norm, gram):
    """The same over the model's fixed stripe count, one ``[..., I]`` row at a time (what
    exported graphs hold: the loop never runs over a dynamic axis).  The norm's square
    ``u^T G u`` is summed as ``sum_k u_k (G_kk u_k / 2 + sum_{l>k} G_kl u_l)``, doubled."""
    stripes = logits.shape[-2]
    exponents = [logits.select(-2, k) + log_norm[k] for k in range(stripes)]
    shift = exponents[0].detach()
    for exponent in exponents[1:]:
        shift = torch.maximum(shift, exponent.detach())
    weights = [_shifted_exp_(exponent, shift) for exponent in exponents]
    numerator, half_square = None, None
    for k, weight in enumerate(weights):
        numerator = weight * cosines.select(-2, k) if numerator is None \
            else numerator.addcmul_(weight, cosines.select(-2, k))
        mixed = weight * (0.5 * gram[k, k])
        for l in range(k + 1, stripes):
            mixed.addcmul_(weights[l], gram[k, l])
        half_square = weight * mixed if half_square is None else half_square.addcmul_(weight, mixed)
    return numerator / half_square.mul_(2.0).clamp_min_(1e-12).sqrt_()


def phrase_pool(logits: torch.Tensor, cosines: torch.Tensor, log_norm: torch.Tensor,
                gram: torch.Tensor) -> torch.Tensor:
    """``cos(x, sum_m a_m p_m)`` per pair, pooling over the phrase axis 1 of ``[T, M, X]``
    (X: the flattened pair axes).  ``log_norm [T, M]`` and ``gram [T, M, M]`` come from
    :func:`phrase_state`.  The phrase axis is dynamic in exported graphs, so this is never
    unrolled: one batched matrix product per query gives ``G^ u`` (one fused kernel for
    all of it when scoring on CUDA)."""
    if fused_scoring(logits, cosines, log_norm, gram):
        return fused_pool.phrase_pool(logits, cosines, log_norm, gram, _FLOOR)
    exponent = logits + log_norm.unsqueeze(-1)
    weights = _shifted_exp_(exponent, exponent.detach().amax(1, keepdim=True))
    square = _product_over(torch.bmm(gram, weights), weights).sum(1)
    numerator = _product_over(weights, cosines).sum(1)
    return numerator / square.clamp_min_(1e-12).sqrt_()


def _product_over(target: torch.Tensor, other: torch.Tensor) -> torch.Tensor:
    """``target * other``, written over ``target`` (which the caller no longer needs): a
    fresh tensor of all pairs per query chunk costs more on the CPU (page faults, cache
    misses) than the multiplication itself.  A fresh tensor all the same where autograd
    needs ``target``, or where ``target`` is narrower (a bf16 product under CUDA autocast
    is widened to fp32, not rounded back to bf16)."""
    if needs_autograd(target, other) or torch.promote_types(target.dtype, other.dtype) != target.dtype:
        return target * other
    return target.mul_(other)


def masked_softmax(logits: torch.Tensor, mask: torch.Tensor, dim: int) -> torch.Tensor:
    """Softmax over ``dim`` that gives exactly 0 to masked slots (and all-0 to empty rows)."""
    weights = torch.softmax(logits.float().masked_fill(~mask, _NEG), dim=dim)
    return weights * mask.to(weights.dtype)


def masked_mean(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``scores [T, M, X]`` over the real phrases of each query (0 where there are none)."""
    valid = mask.to(scores.dtype)
    return (scores * valid.unsqueeze(-1)).sum(1) / valid.sum(1, keepdim=True).clamp_min(1.0)
