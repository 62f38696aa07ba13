"""``part`` (global-part, "relation-guided global-local alignment", MIA section III-C).

Each modality's global vector picks the parts of the other that matter for it.  Where the
relation MLP sits is a setting (``rga_mlp``):

* ``"guide"`` (mia's default): image side, relation ``r_k = cos(v_k, MLP(t_g))``, weights
  ``softmax(r / tau)`` over the K stripes, ``v^ = sum_k a_k v_k``, score ``cos(v^, t_g)``;
  text side, ``r_m = cos(MLP(p_m), v_g)`` over the noun phrases, ``p^ = sum_m a_m p_m`` and
  ``cos(p^, v_g)`` (padded phrases masked out).
* ``"parts"`` (the paper's visual MLP, as the public re-implementation builds it): the
  MLP transforms the stripes and the phrases themselves, ``v'_k = MLP(v_k)``,
  ``r_k = cos(v'_k, t_g)``, ``v^ = sum_k a_k v'_k``; the phrases likewise with their own MLP.

Either way nothing is recomputed per query: the stripes' MLP runs in ``prepare_gallery``,
once per gallery (an exported model's gallery graph holds it).

The score averages both directions (a text without phrases uses the image side alone).
The temperature is either fixed at 1 (``rga_temperature="fixed"``, the public
re-implementation's and mia's default), which makes the softmax over cosines in [-1, 1]
gentle, close to an average that leans toward the matching stripes; or learned from a sharp
start (``"learned"``), which lets a few stripes take the weight. The gentle one won on
measurement (docs/method.md).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from mia.core.modeling.alignment import PreparedAlignment
from mia.core.runtime.attention import masked_softmax, phrase_pool, phrase_state, stripe_pool, stripe_state
from mia.core.modeling.features import ImageFeatures, TextFeatures


def _relation_mlp(embed_dim: int) -> nn.Module:
    return nn.Sequential(nn.Linear(embed_dim, embed_dim), nn.ReLU(inplace=True), nn.Linear(embed_dim, embed_dim))


class PartAlignment(PreparedAlignment):
    uses_phrases = True
    uses_parts = True

    def __init__(self, embed_dim: int, temperature: float = 0.1, rga_temperature: str = "learned",
                 rga_mlp: str = "guide"):
        super().__init__()
        self.rga_mlp = rga_mlp
        if rga_mlp == "parts":
            self.stripe_relation = _relation_mlp(embed_dim)  # stripes -> what the text's global vector weighs
        else:
            self.guide_relation = _relation_mlp(embed_dim)  # text global -> what to look for in the stripes
        self.text_relation = _relation_mlp(embed_dim)  # phrases -> how they relate to an image
        if rga_temperature == "fixed":  # the same state-dict entry, not trained
            self.register_buffer("log_temperature", torch.zeros(()))
        else:
            self.log_temperature = nn.Parameter(torch.tensor(math.log(temperature)))

    @property
    def temperature(self) -> torch.Tensor:
        return self.log_temperature.exp().clamp(0.01, 1.0)

    def _guide(self, text: TextFeatures) -> torch.Tensor:
        """``[T, D]`` unit vectors: what each text looks for in the stripes."""
        guide = text.global_ if self.rga_mlp == "parts" else self.guide_relation(text.global_)
        return F.normalize(guide.float(), dim=-1)

    def _stripes(self, image: ImageFeatures) -> torch.Tensor:
        """``[I, K, D]``: the stripes that are weighed and summed."""
        return self.stripe_relation(image.parts) if self.rga_mlp == "parts" else image.parts

    def _relations(self, text: TextFeatures) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """What scoring and the identity features share: the guide, and without phrases
        ``None, None``, else the phrase keys (``[T, M, D]`` unit vectors: how each phrase
        relates to an image's global vector) and the phrases that are weighed and summed
        (the raw phrases, or with ``"parts"`` the MLP's outputs whose directions the keys are)."""
        if text.phrases.shape[1] == 0:
            return self._guide(text), None, None
        related = self.text_relation(text.phrases).float()
        summed = related if self.rga_mlp == "parts" else text.phrases
        return self._guide(text), F.normalize(related, dim=-1), summed

    def training_outputs(self, text: TextFeatures, image: ImageFeatures) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Both from one run of the relation MLPs."""
        relations, stripes = self._relations(text), self._stripes(image)
        return (self._score(text, self._prepared(stripes, image), *relations),
                self._identity(text, image, stripes, *relations))

    def prepare_gallery(self, image: ImageFeatures) -> tuple[torch.Tensor, ...]:
        return self._prepared(self._stripes(image), image)

    @staticmethod
    def _prepared(stripes: torch.Tensor, image: ImageFeatures) -> tuple[torch.Tensor, ...]:
        """The stripes as :func:`stripe_state` lays them out, and unit global vectors as
        GEMM columns ``[D, I]``."""
        return (*stripe_state(stripes), F.normalize(image.global_.float(), dim=-1).T.contiguous())

    def score_prepared(self, text: TextFeatures, gallery: tuple[torch.Tensor, ...]) -> torch.Tensor:
        return self._score(text, gallery, *self._relations(text))

    def identity_features(self, text: TextFeatures, image: ImageFeatures) -> list[torch.Tensor]:
        return self._identity(text, image, self._stripes(image), *self._relations(text))

    def _score(self, text: TextFeatures, gallery: tuple[torch.Tensor, ...], guide: torch.Tensor,
               keys: torch.Tensor | None, phrases: torch.Tensor | None) -> torch.Tensor:
        stripe_columns, stripe_log_norm, stripe_gram, global_columns = gallery
        tau = self.temperature
        # image side: the text's guide vector weighs the stripes, its global vector is
        # compared with their weighted sum; guide logits and cosines from one product
        stripes, gallery_size = stripe_log_norm.shape
        rows = torch.cat([guide / tau, F.normalize(text.global_.float(), dim=-1)])
        logits, cosines = (rows @ stripe_columns).view(2, -1, stripes, gallery_size).unbind(0)
        image_score = stripe_pool(logits, cosines, stripe_log_norm, stripe_gram)
        if phrases is None:
            return image_score
        queries, slots, dim = phrases.shape
        # text side: the image's global vector weighs the phrases (through their relation
        # keys) and is compared with their weighted sum
        phrase_unit, phrase_log_norm, phrase_gram = phrase_state(phrases, text.phrase_mask)
        rows = torch.cat([keys / tau, phrase_unit]).reshape(-1, dim)
        logits, cosines = (rows @ global_columns).view(2, queries, slots, -1).unbind(0)
        text_score = phrase_pool(logits, cosines, phrase_log_norm, phrase_gram)
        has_phrases = text.phrase_mask.any(dim=1, keepdim=True).to(image_score.dtype)  # [T, 1]
        return (image_score + has_phrases * text_score) / (1.0 + has_phrases)

    def _identity(self, text: TextFeatures, image: ImageFeatures, stripes: torch.Tensor, guide: torch.Tensor,
                  keys: torch.Tensor | None, phrases: torch.Tensor | None) -> list[torch.Tensor]:
        """The guided aggregates of matched pairs (text b with image b): ``v^`` (image) and
        ``p^`` (text).  Only the B diagonal pairs are weighted, not all B x B."""
        parts = stripes.float()
        relation = torch.einsum("bd,bkd->bk", guide, F.normalize(parts, dim=-1))
        features = [torch.einsum("bk,bkd->bd", torch.softmax(relation / self.temperature, dim=1), parts)]
        if keys is not None:
            image_unit = F.normalize(image.global_.float(), dim=-1)
            relation = torch.einsum("bmd,bd->bm", keys, image_unit)
            weights = masked_softmax(relation / self.temperature, text.phrase_mask, dim=1)
            features.append(torch.einsum("bm,bmd->bd", weights, phrases.float()))
        return features
