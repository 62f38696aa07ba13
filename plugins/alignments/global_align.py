"""``global`` (global-global) alignment: cosine between the image and sentence vectors."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from mia.core.modeling.alignment import PreparedAlignment
from mia.core.modeling.features import ImageFeatures, TextFeatures


class GlobalAlignment(PreparedAlignment):
    def __init__(self, embed_dim: int):
        super().__init__()

    def prepare_gallery(self, image: ImageFeatures) -> tuple[torch.Tensor, ...]:
        return (F.normalize(image.global_, dim=-1).T,)

    def score_prepared(self, text: TextFeatures, gallery: tuple[torch.Tensor, ...]) -> torch.Tensor:
        (image_columns,) = gallery
        return F.normalize(text.global_, dim=-1) @ image_columns

    def identity_features(self, text: TextFeatures, image: ImageFeatures) -> list[torch.Tensor]:
        return [image.global_, text.global_]
