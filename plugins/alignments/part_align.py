"""``part`` (global-part, "relation-guided global-local alignment", MIA section III-C).

Each modality's global vector picks the parts of the other that matter for it:

* image side: relation ``r_k = cos(MLP(v_k), t_g)``, weights ``softmax(r / tau)`` over the
  K stripes, ``v^ = sum_k a_k v_k``, score ``cos(v^, t_g)``;
* text side: the same with the noun phrases ``p_m`` guided by ``v_g`` (padded phrases
  masked out).

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
from mia.core.attention import gram, masked_softmax, pooled_norm
from mia.core.features import ImageFeatures, TextFeatures


def _relation_mlp(embed_dim: int) -> nn.Module:
    return nn.Sequential(nn.Linear(embed_dim, embed_dim), nn.ReLU(inplace=True), nn.Linear(embed_dim, embed_dim))


class PartAlignment(Alignment):
    uses_phrases = True
    uses_parts = True

    def __init__(self, embed_dim: int, temperature: float = 0.1):
        super().__init__()
        self.image_relation = _relation_mlp(embed_dim)
        self.text_relation = _relation_mlp(embed_dim)
        self.log_temperature = nn.Parameter(torch.tensor(math.log(temperature)))

    @property
    def temperature(self) -> torch.Tensor:
        return self.log_temperature.exp().clamp(0.01, 1.0)

    def _image_side(self, text: TextFeatures, image: ImageFeatures):
        """Weights over stripes ``[T, I, K]`` and score ``[T, I]`` (text global guides)."""
        text_unit = F.normalize(text.global_, dim=-1)
        relation_keys = F.normalize(self.image_relation(image.parts), dim=-1)
        relation = torch.einsum("td,ikd->tik", text_unit, relation_keys)
        weights = masked_softmax(relation / self.temperature, None, dim=-1)
        dots = torch.einsum("td,ikd->tik", text_unit, image.parts)  # t_g^ . v_k
        norms = pooled_norm(weights, gram(image.parts), "tik,ikl,til->ti")
        return weights, (weights * dots).sum(-1) / norms

    def _text_side(self, text: TextFeatures, image: ImageFeatures):
        """Weights over phrases ``[T, I, M]`` and score ``[T, I]`` (image global guides)."""
        image_unit = F.normalize(image.global_, dim=-1)
        relation_keys = F.normalize(self.text_relation(text.phrases), dim=-1)
        relation = torch.einsum("tmd,id->tim", relation_keys, image_unit)
        mask = text.phrase_mask.unsqueeze(1)  # [T, 1, M]
        weights = masked_softmax(relation / self.temperature, mask, dim=-1)
        dots = torch.einsum("tmd,id->tim", text.phrases, image_unit)
        norms = pooled_norm(weights, gram(text.phrases), "tim,tmn,tin->ti")
        return weights, (weights * dots).sum(-1) / norms

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
        guided_image = torch.einsum("bk,bkd->bd", image_weights[pair, pair], image.parts)
        features = [guided_image]
        if text.phrases.shape[1] > 0:
            text_weights, _ = self._text_side(text, image)
            features.append(torch.einsum("bm,bmd->bd", text_weights[pair, pair], text.phrases))
        return features
