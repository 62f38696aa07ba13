"""``global`` (global-global) alignment: cosine between the image and sentence vectors."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mia.core.alignment import Alignment
from mia.core.features import ImageFeatures, TextFeatures


class GlobalAlignment(Alignment):
    def __init__(self, embed_dim: int):
        super().__init__()

    def similarity(self, text: TextFeatures, image: ImageFeatures) -> torch.Tensor:
        return F.normalize(text.global_, dim=-1) @ F.normalize(image.global_, dim=-1).T

    def identity_features(self, text: TextFeatures, image: ImageFeatures) -> list[torch.Tensor]:
        return [image.global_, text.global_]
