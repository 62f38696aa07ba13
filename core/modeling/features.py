"""What the two towers produce; every alignment reads these and nothing else.

Both are NamedTuples so that TorchScript and ONNX export see plain tuples of tensors.
"""

from __future__ import annotations

from typing import NamedTuple

import torch


class ImageFeatures(NamedTuple):
    global_: torch.Tensor  # [N, D]
    parts: torch.Tensor  # [N, K, D] horizontal stripes, top to bottom


class TextFeatures(NamedTuple):
    global_: torch.Tensor  # [N, D]
    phrases: torch.Tensor  # [N, M, D] noun phrases (M may be 0)
    phrase_mask: torch.Tensor  # [N, M] bool, False for padded phrase slots


def select_texts(text: TextFeatures, index) -> TextFeatures:
    return TextFeatures(*(t[index] for t in text))
