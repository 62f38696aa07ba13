"""The built-in image encoders: torchvision CNN trunks with a global and a stripe head.

The last feature map is pooled twice: globally into ``v_g`` and into K horizontal stripes
(top to bottom, as in PCB and MIA) into ``v_1..v_K``; both are projected to the joint
embedding size.  The trunk starts from random weights, from torchvision's pretrained
weights by name (``imagenet``, ``IMAGENET1K_V2``, ...; see :mod:`mia.core.modeling.pretrained`) or
from a local state dict.  All of them expect ImageNet-normalised RGB, which each encoder
declares as its :class:`~mia.core.data.preprocess.ImagePreprocessing`.
"""

from __future__ import annotations

import functools
from collections import OrderedDict

import torch
import torchvision
from torch import nn

from mia.core.base.errors import MiaError
from mia.core.modeling.pretrained import load_image_weights
from mia.core.data.preprocess import ImagePreprocessing


@functools.lru_cache(maxsize=32)
def _stripe_weights(rows: int, parts: int) -> tuple[tuple[float, ...], ...]:
    """``[rows][parts]`` averaging matrix with adaptive-pooling bin edges.

    A matrix instead of ``adaptive_avg_pool`` because it exports to ONNX for any
    rows/parts ratio (ONNX has no adaptive pooling when rows % parts != 0).  Plain
    Python numbers, so that tracing records one constant rather than the ops that built it.
    """
    table = [[0.0] * parts for _ in range(rows)]
    for k in range(parts):
        start, end = (k * rows) // parts, -(-((k + 1) * rows) // parts)
        for row in range(start, end):
            table[row][k] = 1.0 / (end - start)
    return tuple(tuple(row) for row in table)


@functools.lru_cache(maxsize=32)
def _stripe_pool(rows: int, parts: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """:func:`_stripe_weights` as a tensor on ``device``, made once: building it is a
    blocking host-to-device copy, which in every eager step on a GPU would hold the CPU
    until the GPU had caught up, so no kernel launch could run ahead.  Traced graphs record
    it as one constant; compiled ones trace through the cache and build it in the graph."""
    return torch.tensor(_stripe_weights(rows, parts), device=device, dtype=dtype)


class StripeEncoder(nn.Module):
    """Image tower -> (global ``[B, D]``, stripes ``[B, K, D]``).

    The heads and the stripe pooling are the same for every image tower; what a tower
    gives them is :meth:`pooled_rows`, which a token tower (a ViT) overrides with its
    class token and the rows of its patch grid.
    """

    preprocessing = ImagePreprocessing()

    def __init__(self, trunk: nn.Module, channels: int, embed_dim: int, num_parts: int,
                 weights_source: str | None = None, global_channels: int | None = None):
        super().__init__()
        self.trunk = trunk
        self.num_parts = num_parts
        self.weights_source = weights_source  # recorded in checkpoints: where training started from
        # a tower may pool its global vector through a head of its own, to another width
        self.global_head = nn.Sequential(nn.Linear(global_channels or channels, embed_dim), nn.BatchNorm1d(embed_dim))
        self.part_head = nn.Linear(channels, embed_dim)
        self.part_norm = nn.BatchNorm1d(embed_dim)

    def without_head_norms(self) -> None:
        """Linear heads alone, without their BatchNorm: the public MIA re-implementation's
        (``--image-heads linear``)."""
        self.global_head[1] = nn.Identity()
        self.part_norm = nn.Identity()

    def pooled_rows(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(global features ``[B, C]``, one feature per row of the map ``[B, C, H]``)."""
        rows = self.trunk(images).mean(dim=3)  # feature map [B, C, H, W] -> [B, C, H]
        return rows.mean(dim=2), rows

    def forward(self, images: torch.Tensor):
        pooled, rows = self.pooled_rows(images)
        global_ = self.global_head(pooled)
        pool = _stripe_pool(int(rows.shape[2]), self.num_parts, rows.device, rows.dtype)
        stripes = torch.matmul(rows, pool).transpose(1, 2)  # [B, K, C]
        parts = self.part_norm(self.part_head(stripes).transpose(1, 2)).transpose(1, 2)
        return global_, parts


def check_patch_grid(label: str, size: tuple[int, int], grid: tuple[int, int], num_parts: int) -> None:
    """A token tower's stripes are bands of whole patch rows, all of one height, so the
    grid's rows must divide into ``num_parts``; otherwise one line saying what would."""
    rows, columns = grid
    if rows % num_parts == 0:
        return
    fits = [str(k) for k in range(1, rows + 1) if rows % k == 0]
    choices = f"{', '.join(fits[:-1])} or {fits[-1]}" if len(fits) > 1 else fits[0]
    patch = size[0] // rows
    raise MiaError(f"--num-parts {num_parts}: {label} at {size[0]}x{size[1]} has a {rows}x{columns} patch grid "
                   f"({patch}-pixel patches) whose {rows} rows do not cut into {num_parts} equal stripes; use "
                   f"--num-parts {choices}, or an --image-size whose height is a multiple of {num_parts * patch}")


def _torchvision_model(name: str, weights: str | None) -> tuple[nn.Module, str | None]:
    """torchvision's ``name`` with random weights or the ones ``weights`` names (see module doc)."""
    model = getattr(torchvision.models, name)(weights=None)
    if not weights:
        return model, None
    state, source = load_image_weights(name, weights)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    try:
        model.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError, AttributeError) as exc:
        first = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise MiaError(f"--image-weights {weights}: not a torchvision {name} state dict ({first})") from None
    return model, source


def _resnet(name: str):
    """A factory of ``name`` (resnet18, resnet50) as a stripe encoder."""
    def factory(embed_dim: int, num_parts: int, weights: str | None = None) -> StripeEncoder:
        model, source = _torchvision_model(name, weights)
        trunk = nn.Sequential(OrderedDict(
            (child, getattr(model, child))
            for child in ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4")
        ))
        return StripeEncoder(trunk, model.fc.in_features, embed_dim, num_parts, source)

    return factory


def mobilenet_v2(embed_dim: int, num_parts: int, weights: str | None = None) -> StripeEncoder:
    model, source = _torchvision_model("mobilenet_v2", weights)
    return StripeEncoder(model.features, model.last_channel, embed_dim, num_parts, source)


resnet18, resnet50 = _resnet("resnet18"), _resnet("resnet50")
