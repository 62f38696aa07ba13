"""Attention pooling fused into one Triton kernel per call, for scoring on CUDA.

On the GPU, scoring a CUHK-PEDES test split is bound by memory passes, not arithmetic:
the eager pooling (``core.attention``) reads and writes the ``[queries, phrases, stripes,
gallery]`` pair tensor a dozen times per query chunk, each pass as long as the bounding
bf16 matrix product itself.  These kernels read the logits and cosines once, keep a
pair's few stripe or phrase weights in registers and write one score: the same
arithmetic as ``_stripe_pool_batched`` and ``phrase_pool`` (shift by the maximum, floor
at ``e^-80``, the ratio of the weighted cosine sum to the norm ``sqrt(u^T G u)``).

Scoring only: they have no backward, so training (autograd), TorchScript/ONNX tracing and
``torch.compile`` keep the eager forms (``mia.core.runtime.policy.fused_kernels`` decides, with
``MIA_FUSED_KERNELS=0`` as the switch).  The tests run both kernels
on the CPU through Triton's interpreter (``TRITON_INTERPRET=1``) against the eager forms.
"""

from __future__ import annotations

import torch

try:
    import triton
    import triton.language as tl
except ImportError:  # Triton comes with PyTorch's Linux wheels; without it the eager forms run
    triton = None

available = triton is not None

_OUTSIDE = -1.0e30  # exponent of a slot past the real ones: drops out of the maximum


if available:

    @triton.jit
    def _pool_weights(exponent, valid, FLOOR: tl.constexpr, OUTSIDE: tl.constexpr):
        """Unnormalised attention weights over axis 0: shift by the maximum, floor, exp."""
        exponent = tl.where(valid, exponent, OUTSIDE)
        shift = tl.max(exponent, axis=0)
        return tl.where(valid, tl.exp(tl.maximum(exponent - shift[None, :], FLOOR)), 0.0)

    @triton.jit
    def _load_pairs(pointer, outer, outer_stride, index, index_stride, cols, valid):
        """The ``[slots, BLOCK]`` tile of a pair tensor at row ``outer``, as fp32."""
        offsets = outer * outer_stride + index[:, None] * index_stride + cols[None, :]
        return tl.load(pointer + offsets, mask=valid, other=0.0).to(tl.float32)

    @triton.jit
    def _pooled_cosine(weights, cosines, mixed):
        """``sum u c / sqrt(u^T G u)`` per column, given ``mixed = G u``."""
        numerator = tl.sum(weights * cosines, axis=0)
        square = tl.sum(weights * mixed, axis=0)
        return numerator / tl.sqrt(tl.maximum(square, 1e-12))

    @triton.jit
    def _stripe_pool_kernel(logit_ptr, cosine_ptr, log_norm_ptr, gram_ptr, out_ptr, items,
                            logit_row_stride, logit_stripe_stride, cosine_row_stride, cosine_stripe_stride,
                            STRIPES: tl.constexpr, STRIPES_PAD: tl.constexpr, BLOCK: tl.constexpr,
                            FLOOR: tl.constexpr, OUTSIDE: tl.constexpr):
        """One row of ``[rows, K, I]`` pairs, BLOCK gallery items: pool over the K stripes."""
        row = tl.program_id(0).to(tl.int64)
        cols = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
        ks = tl.arange(0, STRIPES_PAD)
        valid = (ks[:, None] < STRIPES) & (cols[None, :] < items)
        logits = _load_pairs(logit_ptr, row, logit_row_stride, ks, logit_stripe_stride, cols, valid)
        cosines = _load_pairs(cosine_ptr, row, cosine_row_stride, ks, cosine_stripe_stride, cols, valid)
        log_norm = tl.load(log_norm_ptr + ks[:, None] * items + cols[None, :], mask=valid, other=0.0).to(tl.float32)
        weights = _pool_weights(logits + log_norm, valid, FLOOR, OUTSIDE)
        ls = tl.arange(0, STRIPES_PAD)
        gram_mask = (ks[:, None, None] < STRIPES) & (ls[None, :, None] < STRIPES) & (cols[None, None, :] < items)
        gram = tl.load(gram_ptr + (ks[:, None, None] * STRIPES + ls[None, :, None]) * items + cols[None, None, :],
                       mask=gram_mask, other=0.0).to(tl.float32)
        mixed = tl.sum(gram * weights[None, :, :], axis=1)  # (G u)_k per item
        tl.store(out_ptr + row * items + cols, _pooled_cosine(weights, cosines, mixed), mask=cols < items)

    @triton.jit
    def _phrase_pool_kernel(logit_ptr, cosine_ptr, log_norm_ptr, gram_ptr, out_ptr, slots, width,
                            logit_query_stride, logit_slot_stride, cosine_query_stride, cosine_slot_stride,
                            SLOTS_PAD: tl.constexpr, BLOCK: tl.constexpr, FLOOR: tl.constexpr,
                            OUTSIDE: tl.constexpr):
        """One query, BLOCK pair columns of ``[T, M, X]``: pool over the M phrase slots."""
        query = tl.program_id(0).to(tl.int64)
        cols = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
        ms = tl.arange(0, SLOTS_PAD)
        valid = (ms[:, None] < slots) & (cols[None, :] < width)
        logits = _load_pairs(logit_ptr, query, logit_query_stride, ms, logit_slot_stride, cols, valid)
        cosines = _load_pairs(cosine_ptr, query, cosine_query_stride, ms, cosine_slot_stride, cols, valid)
        log_norm = tl.load(log_norm_ptr + query * slots + ms, mask=ms < slots, other=0.0).to(tl.float32)
        weights = _pool_weights(logits + log_norm[:, None], valid, FLOOR, OUTSIDE)
        ns = tl.arange(0, SLOTS_PAD)
        gram = tl.load(gram_ptr + query * slots * slots + ms[:, None] * slots + ns[None, :],
                       mask=(ms[:, None] < slots) & (ns[None, :] < slots), other=0.0).to(tl.float32)
        mixed = tl.dot(gram, weights, input_precision="ieee")  # G u, [M, BLOCK]
        tl.store(out_ptr + query * width + cols, _pooled_cosine(weights, cosines, mixed), mask=cols < width)


def _unit_inner_stride(tensor: torch.Tensor) -> torch.Tensor:
    return tensor if tensor.stride(-1) == 1 else tensor.contiguous()


def stripe_pool(logits: torch.Tensor, cosines: torch.Tensor, log_norm: torch.Tensor, gram: torch.Tensor,
                floor: float, block: int = 128) -> torch.Tensor:
    """``core.attention.stripe_pool`` for ``[..., K, I]`` pairs, one kernel (``floor``: the
    lowest exponent, ``core.attention._FLOOR``)."""
    *lead, stripes, items = logits.shape
    logits = _unit_inner_stride(logits.reshape(-1, stripes, items))
    cosines = _unit_inner_stride(cosines.reshape(-1, stripes, items))
    out = torch.empty(logits.shape[0], items, device=logits.device, dtype=torch.float32)
    grid = (logits.shape[0], triton.cdiv(items, block))
    _stripe_pool_kernel[grid](logits, cosines, log_norm.float().contiguous(), gram.contiguous(), out, items,
                              logits.stride(0), logits.stride(1), cosines.stride(0), cosines.stride(1),
                              STRIPES=stripes, STRIPES_PAD=triton.next_power_of_2(stripes), BLOCK=block,
                              FLOOR=floor, OUTSIDE=_OUTSIDE)
    return out.view(*lead, items)


def phrase_pool(logits: torch.Tensor, cosines: torch.Tensor, log_norm: torch.Tensor, gram: torch.Tensor,
                floor: float, block: int = 64) -> torch.Tensor:
    """``core.attention.phrase_pool`` for ``[T, M, X]`` pairs, one kernel (``tl.dot`` needs
    the slot axis padded to at least 16)."""
    queries, slots, width = logits.shape
    logits, cosines = _unit_inner_stride(logits), _unit_inner_stride(cosines)
    out = torch.empty(queries, width, device=logits.device, dtype=torch.float32)
    grid = (queries, triton.cdiv(width, block))
    _phrase_pool_kernel[grid](logits, cosines, log_norm.float().contiguous(), gram.contiguous(), out, slots, width,
                              logits.stride(0), logits.stride(1), cosines.stride(0), cosines.stride(1),
                              SLOTS_PAD=max(16, triton.next_power_of_2(slots)), BLOCK=block,
                              FLOOR=floor, OUTSIDE=_OUTSIDE)
    return out
