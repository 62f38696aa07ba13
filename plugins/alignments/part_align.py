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

    def _guide(self, text: TextFeatures) -> torch.Tensor:
        """``[T, D]`` unit vectors: what each text looks for in the stripes."""
        return F.normalize(self.guide_relation(text.global_).float(), dim=-1)

    def _phrase_keys(self, text: TextFeatures) -> torch.Tensor:
        """``[T, M, D]`` unit vectors: how each phrase relates to an image's global vector."""
        return F.normalize(self.text_relation(text.phrases).float(), dim=-1)

    def _image_side(self, text: TextFeatures, image: ImageFeatures):
        """Score ``[T, I]`` of every pair (the text's global vector guides the stripes)."""
        parts = image.parts.float()
        gallery, stripes, dim = parts.shape
        text_unit = F.normalize(text.global_.float(), dim=-1)
        guide = self._guide(text)
        stripe_rows = parts.transpose(0, 1).reshape(-1, dim)  # [K*I, D], gallery innermost
        relation = (guide @ F.normalize(stripe_rows, dim=-1).T).view(-1, stripes, gallery)
        weights = torch.softmax(relation / self.temperature, dim=1)
        dots = (text_unit @ stripe_rows.T).view(-1, stripes, gallery)
        return weighted_sum(weights, dots, dim=1) / norm_with_item_gram(weights, gallery_gram(parts))

    def _text_side(self, text: TextFeatures, image: ImageFeatures):
        """Score ``[T, I]`` of every pair (the image's global vector guides the phrases)."""
        phrases = text.phrases.float()
        queries, slots, dim = phrases.shape
        image_unit = F.normalize(image.global_.float(), dim=-1)  # [I, D]
        keys = self._phrase_keys(text)
        relation = (keys.reshape(-1, dim) @ image_unit.T).view(queries, slots, -1)
        weights = masked_softmax(relation / self.temperature, text.phrase_mask.unsqueeze(-1), dim=1)
        dots = (phrases.reshape(-1, dim) @ image_unit.T).view(queries, slots, -1)
        return (weights * dots).sum(1) / norm_with_query_gram(weights, query_gram(phrases))

    def similarity(self, text: TextFeatures, image: ImageFeatures) -> torch.Tensor:
        image_score = self._image_side(text, image)
        if text.phrases.shape[1] == 0:
            return image_score
        text_score = self._text_side(text, image)
        has_phrases = text.phrase_mask.any(dim=1, keepdim=True).to(image_score.dtype)  # [T, 1]
        return (image_score + has_phrases * text_score) / (1.0 + has_phrases)

    def identity_features(self, text: TextFeatures, image: ImageFeatures) -> list[torch.Tensor]:
        """The guided aggregates of matched pairs (text b with image b): ``v^`` (image) and
        ``p^`` (text).  Only the B diagonal pairs are weighted, not all B x B."""
        parts = image.parts.float()
        relation = torch.einsum("bd,bkd->bk", self._guide(text), F.normalize(parts, dim=-1))
        features = [torch.einsum("bk,bkd->bd", torch.softmax(relation / self.temperature, dim=1), parts)]
        if text.phrases.shape[1] > 0:
            image_unit = F.normalize(image.global_.float(), dim=-1)
            relation = torch.einsum("bmd,bd->bm", self._phrase_keys(text), image_unit)
            weights = masked_softmax(relation / self.temperature, text.phrase_mask, dim=1)
            features.append(torch.einsum("bm,bmd->bd", weights, text.phrases.float()))
        return features
