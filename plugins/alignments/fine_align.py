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

from mia.core.modeling.alignment import PreparedAlignment
from mia.core.runtime.attention import masked_mean, phrase_pool, phrase_state, stripe_pool, stripe_state
from mia.core.modeling.features import ImageFeatures, TextFeatures


class FineAlignment(PreparedAlignment):
    uses_phrases = True
    uses_parts = True

    def __init__(self, embed_dim: int, temperature: float = 0.1):
        super().__init__()
        self.log_temperature = nn.Parameter(torch.tensor(math.log(temperature)))

    @property
    def temperature(self) -> torch.Tensor:
        return self.log_temperature.exp().clamp(0.01, 1.0)

    def prepare_gallery(self, image: ImageFeatures) -> tuple[torch.Tensor, ...]:
        return stripe_state(image.parts)

    def score_prepared(self, text: TextFeatures, gallery: tuple[torch.Tensor, ...]) -> torch.Tensor:
        stripe_columns, stripe_log_norm, stripe_gram = gallery
        stripes, gallery_size = stripe_log_norm.shape
        queries, slots, dim = text.phrases.shape
        if slots == 0:
            return stripe_columns.new_zeros(queries, gallery_size)
        phrase_unit, phrase_log_norm, phrase_gram = phrase_state(text.phrases, text.phrase_mask)
        tau = self.temperature
        # the one big product, already divided by the temperature: cos(p_m, v_k) / tau for
        # every phrase m of every query and every stripe k of every image; it is both the
        # attention logits and (times tau) the cosines that get pooled
        logits = (phrase_unit.reshape(-1, dim) / tau) @ stripe_columns
        logits = logits.view(queries, slots, stripes, gallery_size)

        # each phrase attends over the stripes: [T, M, I], averaged over the real phrases
        phrase_scores = stripe_pool(logits, logits, stripe_log_norm, stripe_gram)
        phrase_side = masked_mean(phrase_scores, text.phrase_mask)
        # each stripe attends over the real phrases: [T, K*I], averaged over the stripes
        flat = logits.view(queries, slots, -1)
        stripe_scores = phrase_pool(flat, flat, phrase_log_norm, phrase_gram)
        stripe_side = stripe_scores.view(queries, stripes, gallery_size).mean(1)

        has_phrases = text.phrase_mask.any(dim=1, keepdim=True).to(phrase_side.dtype)
        return has_phrases * (0.5 * tau) * (phrase_side + stripe_side)
