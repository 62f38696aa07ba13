"""``fine`` (part-part, "bidirectional fine-grained matching", MIA section III-D).

Every noun phrase attends over the image stripes and is scored against what it attended
to; every stripe attends over the phrases likewise.  Phrase scores are averaged over the
real (unpadded) phrases, stripe scores over the stripes, and the two directions averaged.
All ``T x I`` pairs come from one ``[T*M, D] x [D, I*K]`` product (see ``core.attention``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from mia.core.alignment import Alignment
from mia.core.attention import gram, masked_softmax, pooled_norm
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
        phrases, parts = text.phrases, image.parts  # [T, M, D], [I, K, D]
        if phrases.shape[1] == 0:
            return phrases.new_zeros(len(phrases), len(parts))
        phrase_norm = phrases.norm(dim=-1).clamp_min(1e-6)  # [T, M]
        part_norm = parts.norm(dim=-1).clamp_min(1e-6)  # [I, K]
        dots = torch.einsum("tmd,ikd->tmik", phrases, parts)  # the one big product
        cosine = dots / (phrase_norm[:, :, None, None] * part_norm[None, None])
        logits = cosine / self.temperature
        mask = text.phrase_mask  # [T, M]

        # phrase -> stripes: cos(p, sum_k a_k v_k) = sum_k a_k (p^.v_k) / ||sum_k a_k v_k||
        to_parts = masked_softmax(logits, None, dim=-1)  # [T, M, I, K]
        attended_norm = pooled_norm(to_parts, gram(parts), "tmik,ikl,tmil->tmi")
        phrase_scores = (to_parts * cosine * part_norm[None, None]).sum(-1) / attended_norm  # [T, M, I]
        valid = mask.to(phrase_scores.dtype)
        phrase_side = (phrase_scores * valid[:, :, None]).sum(1) / valid.sum(1, keepdim=True).clamp_min(1.0)

        # stripe -> phrases: cos(v, sum_m b_m p_m) with b masked over padded phrases
        to_phrases = masked_softmax(logits.permute(0, 2, 3, 1), mask[:, None, None, :], dim=-1)  # [T, I, K, M]
        attended_norm = pooled_norm(to_phrases, gram(phrases), "tikm,tmn,tikn->tik")
        weighted = (to_phrases * cosine.permute(0, 2, 3, 1) * phrase_norm[:, None, None, :]).sum(-1)
        part_side = (weighted / attended_norm).mean(-1)  # [T, I]

        has_phrases = mask.any(dim=1, keepdim=True).to(phrase_side.dtype)
        return has_phrases * 0.5 * (phrase_side + part_side)
