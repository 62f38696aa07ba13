"""``fine`` (part-part, "bidirectional fine-grained matching", MIA section III-D).

Every noun phrase attends over the image stripes and is scored against what it attended
to; every stripe attends over the phrases likewise.  Phrase scores are averaged over the
real (unpadded) phrases, stripe scores over the stripes, and the two directions averaged.
All ``T x I`` pairs come from one ``[T*M, D] x [D, K*I]`` product (see ``core.attention``).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from mia.core.alignment import Alignment
from mia.core.attention import (gallery_gram, masked_softmax, norm_with_item_gram, norm_with_query_gram,
                                query_gram, unit_and_norm, weighted_sum)
from mia.core.features import ImageFeatures, TextFeatures


class FineAlignment(Alignment):
    uses_phrases = True
    uses_parts = True

    def __init__(self, embed_dim: int, temperature: float = 0.1):
        super().__init__()
        self.log_temperature = nn.Parameter(torch.tensor(math.log(temperature)))

    @property
    def temperature(self) -> torch.Tensor:
        return self.log_temperature.exp().clamp(0.01, 1.0)

    def similarity(self, text: TextFeatures, image: ImageFeatures) -> torch.Tensor:
        phrases, parts, mask = text.phrases.float(), image.parts.float(), text.phrase_mask
        queries, slots, dim = phrases.shape
        gallery, stripes = parts.shape[:2]
        if slots == 0:
            return phrases.new_zeros(queries, gallery)
        phrase_unit, phrase_norm = unit_and_norm(phrases)  # [T, M, D], [T, M]
        part_unit, part_norm = unit_and_norm(parts)  # [I, K, D], [I, K]
        # the one big product: cosine[t, m, k, i] of phrase m and stripe k of image i
        cosine = (phrase_unit.reshape(-1, dim) @ part_unit.transpose(0, 1).reshape(-1, dim).T)
        cosine = cosine.view(queries, slots, stripes, gallery)
        logits = cosine / self.temperature

        # phrase -> stripes: cos(p, sum_k a_k v_k) = sum_k a_k (p^ . v_k) / ||sum_k a_k v_k||
        to_parts = torch.softmax(logits, dim=2)
        toward_parts = cosine * part_norm.T  # p^ . v_k
        phrase_scores = weighted_sum(to_parts, toward_parts, dim=2) / norm_with_item_gram(to_parts, gallery_gram(parts))
        valid = mask.to(phrase_scores.dtype)  # [T, M]
        count = valid.sum(1, keepdim=True).clamp_min(1.0)
        phrase_side = (phrase_scores * valid.unsqueeze(-1)).sum(1) / count

        # stripe -> phrases: cos(v, sum_m b_m p_m), padded phrases masked out
        to_phrases = masked_softmax(logits, mask[:, :, None, None], dim=1)  # [T, M, K, I]
        toward_phrases = cosine * phrase_norm[:, :, None, None]  # v^ . p_m
        numerator = (to_phrases * toward_phrases).sum(1)  # [T, K, I]
        norms = norm_with_query_gram(to_phrases.view(queries, slots, -1), query_gram(phrases))
        part_side = (numerator / norms.view(queries, stripes, gallery)).mean(1)

        has_phrases = mask.any(dim=1, keepdim=True).to(phrase_side.dtype)
        return has_phrases * 0.5 * (phrase_side + part_side)
