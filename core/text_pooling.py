"""Pooling helpers shared by text encoders: exportable (plain gathers and masked
reductions, no data-dependent shapes) and safe in bf16 (no ``-inf``)."""

from __future__ import annotations

import torch

NEG = -1.0e4  # "minus infinity" that survives bf16 and ONNX


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values [..., L, H]`` over positions where ``mask [..., L]`` is true (0 if none)."""
    weights = mask.unsqueeze(-1).to(values.dtype)
    return (values * weights).sum(dim=-2) / weights.sum(dim=-2).clamp(min=1.0)


def pool_positions(outputs: torch.Tensor, positions: torch.Tensor, mode: str) -> torch.Tensor:
    """Pool ``outputs [N, L, H]`` at 1-based ``positions [N, M, P]`` (0 = padding) -> ``[N, M, H]``.

    ``mode`` is ``"max"`` or ``"mean"``; a phrase without positions gives zeros.
    """
    batch, slots, width = positions.shape
    index = (positions - 1).clamp(min=0).reshape(batch, slots * width, 1).expand(-1, -1, outputs.shape[-1])
    gathered = outputs.gather(1, index).reshape(batch, slots, width, outputs.shape[-1])
    mask = positions != 0
    if mode == "mean":
        return masked_mean(gathered, mask)
    pooled = gathered.masked_fill(~mask.unsqueeze(-1), NEG).max(dim=2).values
    return pooled * mask.any(dim=-1, keepdim=True).to(pooled.dtype)
