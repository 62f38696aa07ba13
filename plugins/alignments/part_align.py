"""``part`` (global-part, "relation-guided global-local alignment", MIA section III-C).

Each modality's global vector picks the parts of the other that matter for it:

* image side: relation ``r_k = cos(v_k, MLP(t_g))``, weights ``softmax(r / tau)`` over the
  K stripes, ``v^ = sum_k a_k v_k``, score ``cos(v^, t_g)``;
* text side: relation ``r_m = cos(MLP(p_m), v_g)`` over the noun phrases, ``p^`` and
  ``cos(p^, v_g)`` likewise (padded phrases masked out).

The learned relation transform always sits on the query (text) side, never on the
gallery's stripes: a gallery is scored in many query chunks, and a per-stripe MLP would be
recomputed for every chunk (about 40% of the bounding matrix product on CUHK-PEDES).

The score averages both directions (a text without phrases uses the image side alone).
The temperature is learned: without one, a softmax over cosines in [-1, 1] is nearly
uniform and the "guidance" does nothing (a known weakness of the public re-implementation).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from mia.core.alignment import Alignment
from mia.core.attention import (gallery_gram, masked_softmax, norm_with_item_gram, norm_with_query_gram,
                                query_gram, weighted_sum)
from mia.core.features import ImageFeatures, TextFeatures


def _relation_mlp(embed_dim: int) -> nn.Module:
    return nn.Sequential(nn.Linear(embed_dim, embed_dim), nn.ReLU(inplace=True), nn.Linear(embed_dim, embed_dim))


class PartAlignment(Alignment):
    uses_phrases = True
    uses_parts = True

    def __init__(self, embed_dim: int, temperature: float = 0.1):
        super().__init__()
        self.guide_relation = _relation_mlp(embed_dim)  # text global -> what to look for in the stripes
        self.text_relation = _relation_mlp(embed_dim)  # phrases -> how they relate to an image
        self.log_temperature = nn.Parameter(torch.tensor(math.log(temperature)))

    @property
    def temperature(self) -> torch.Tensor:
        return self.log_temperature.exp().clamp(0.01, 1.0)

    def _image_side(self, text: TextFeatures, image: ImageFeatures):
        """Weights over stripes ``[T, K, I]`` and score ``[T, I]`` (the text's global vector guides)."""
        parts = image.parts.float()
        gallery, stripes, dim = parts.shape
        text_unit = F.normalize(text.global_.float(), dim=-1)
        guide = F.normalize(self.guide_relation(text.global_).float(), dim=-1)
        stripe_rows = parts.transpose(0, 1).reshape(-1, dim)  # [K*I, D], gallery innermost
        relation = (guide @ F.normalize(stripe_rows, dim=-1).T).view(-1, stripes, gallery)
        weights = torch.softmax(relation / self.temperature, dim=1)
        dots = (text_unit @ stripe_rows.T).view(-1, stripes, gallery)
        score = weighted_sum(weights, dots, dim=1) / norm_with_item_gram(weights, gallery_gram(parts))
        return weights, score

    def _text_side(self, text: TextFeatures, image: ImageFeatures):
        """Weights over phrases ``[T, M, I]`` and score ``[T, I]`` (the image's global vector guides)."""
        phrases = text.phrases.float()
        queries, slots, dim = phrases.shape
        image_unit = F.normalize(image.global_.float(), dim=-1)  # [I, D]
        keys = F.normalize(self.text_relation(phrases).float(), dim=-1)
        relation = (keys.reshape(-1, dim) @ image_unit.T).view(queries, slots, -1)
        weights = masked_softmax(relation / self.temperature, text.phrase_mask.unsqueeze(-1), dim=1)
        dots = (phrases.reshape(-1, dim) @ image_unit.T).view(queries, slots, -1)
        score = (weights * dots).sum(1) / norm_with_query_gram(weights, query_gram(phrases))
        return weights, score

    def similarity(self, text: TextFeatures, image: ImageFeatures) -> torch.Tensor:
        _, image_score = self._image_side(text, image)
        if text.phrases.shape[1] == 0:
            return image_score
        _, text_score = self._text_side(text, image)
        has_phrases = text.phrase_mask.any(dim=1, keepdim=True).to(image_score.dtype)  # [T, 1]
        return (image_score + has_phrases * text_score) / (1.0 + has_phrases)

    def identity_features(self, text: TextFeatures, image: ImageFeatures) -> list[torch.Tensor]:
        """The guided aggregates of matched pairs: ``v^`` (image) and ``p^`` (text)."""
        image_weights, _ = self._image_side(text, image)
        pair = torch.arange(len(text.global_), device=text.global_.device)
        guided_image = torch.einsum("bk,bkd->bd", image_weights[pair, :, pair], image.parts.float())
        features = [guided_image]
        if text.phrases.shape[1] > 0:
            text_weights, _ = self._text_side(text, image)
            features.append(torch.einsum("bm,bmd->bd", text_weights[pair, :, pair], text.phrases.float()))
        return features
