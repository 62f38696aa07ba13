"""The contract of an alignment plugin and the losses every alignment shares.

An alignment scores every text against every image (``[T, I]``, one batched computation)
and names the features its identity loss should classify.  The model turns those into
the same two losses for every granularity: a bidirectional ranking loss over the in-batch
similarity matrix and an identity (classification) loss through one shared classifier.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from mia.core.modeling.features import ImageFeatures, TextFeatures


class Alignment(nn.Module, abc.ABC):
    """Base class of alignment plugins (``register_alignments``)."""

    #: does the text side need noun phrases (and so a phrase chunker)?
    uses_phrases: bool = False
    #: does the image side need the stripe vectors (or only the global one)?
    uses_parts: bool = False

    @abc.abstractmethod
    def similarity(self, text: TextFeatures, image: ImageFeatures) -> torch.Tensor:
        """Scores of all ``T x I`` pairs (higher = more alike)."""

    def prepare_gallery(self, image: ImageFeatures) -> tuple[torch.Tensor, ...]:
        """Whatever of the gallery's features scoring reads, computed once per gallery.

        Evaluation scores many query chunks against one gallery; an alignment whose
        gallery side costs work (normalising, Gram matrices, GEMM layouts) does it here
        and reads the result in :meth:`score_prepared`.  The default is the features.
        """
        return tuple(image)

    def score_prepared(self, text: TextFeatures, gallery: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """:meth:`similarity` against a gallery made by :meth:`prepare_gallery`."""
        return self.similarity(text, ImageFeatures(*gallery))

    def identity_features(self, text: TextFeatures, image: ImageFeatures) -> list[torch.Tensor]:
        """``[B, D]`` features of the matched pairs (text b, image b) for the identity loss."""
        return []

    @property
    def has_identity_features(self) -> bool:
        """Whether :meth:`identity_features` gives any: whether the subclass overrides it."""
        return type(self).identity_features is not Alignment.identity_features

    def training_outputs(self, text: TextFeatures, image: ImageFeatures) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """:meth:`similarity` and :meth:`identity_features` of one batch, together: an
        alignment whose two share work overrides this to do that work once per step."""
        return self.similarity(text, image), self.identity_features(text, image)


class PreparedAlignment(Alignment):
    """An alignment written as :meth:`prepare_gallery` + :meth:`score_prepared` (a gallery
    side worth computing once per gallery); :meth:`similarity` is the two in a row."""

    def similarity(self, text: TextFeatures, image: ImageFeatures) -> torch.Tensor:
        return self.score_prepared(text, self.prepare_gallery(image))

    @abc.abstractmethod
    def prepare_gallery(self, image: ImageFeatures) -> tuple[torch.Tensor, ...]:
        """See :meth:`Alignment.prepare_gallery`."""

    @abc.abstractmethod
    def score_prepared(self, text: TextFeatures, gallery: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """See :meth:`Alignment.score_prepared`."""


@torch.no_grad()
def undeclared_reads(alignment: Alignment, text: TextFeatures, image: ImageFeatures,
                     scores: torch.Tensor | None = None) -> list[str]:
    """What ``alignment`` reads without declaring it: ``"image parts (uses_parts)"``,
    ``"noun phrases (uses_phrases)"``, found by changing the undeclared input and watching
    the scores.  An export leaves undeclared inputs out of the scorer, so this must be empty."""
    scores = alignment.similarity(text, image) if scores is None else scores
    problems = []
    if not alignment.uses_parts:
        moved = alignment.similarity(text, ImageFeatures(image.global_, torch.randn_like(image.parts)))
        if not torch.allclose(moved, scores):
            problems.append("image parts (uses_parts)")
    if not alignment.uses_phrases and text.phrases.shape[1]:
        changed = TextFeatures(text.global_, torch.randn_like(text.phrases), torch.ones_like(text.phrase_mask))
        if not torch.allclose(alignment.similarity(changed, image), scores):
            problems.append("noun phrases (uses_phrases)")
    return problems


@dataclass(frozen=True)
class LossSettings:
    """How a training step's losses are formed, apart from the per-alignment weights (which
    change with the stage): the hinge ``margin``, which ``negatives`` it reads, the identity
    loss's weight and which alignments' features it classifies (``id_features``); the
    choices are listed in :mod:`mia.core.settings.config`.  ``ranks=False`` leaves the
    ranking loss out: the identity-only epochs of ``--identity-epochs``."""

    margin: float = 0.2
    id_weight: float = 1.0
    negatives: str = "hardest"
    id_features: str = "all"
    ranks: bool = True

    def classifies(self, alignment: str) -> bool:
        """Whether ``alignment``'s identity features go to the classifier."""
        return self.id_weight > 0 and (self.id_features == "all" or alignment == "global")


def ranking_loss(similarity: torch.Tensor, labels: torch.Tensor, margin: float,
                 negatives: str = "hardest") -> torch.Tensor:
    """Bidirectional hinge loss over the in-batch negatives.

    ``similarity[t, i]`` compares text t with image i; pair b is (text b, image b).  Pairs
    of the same person are never used as negatives.  ``hardest``: each text against its
    closest wrong image and each image against its closest wrong text (VSE++), mia's
    default.  ``all``: the hinge summed over every negative, per anchor, as the public MIA
    re-implementation's triplet loss does (without its slip that takes both terms'
    negatives from the images).
    """
    positive = similarity.diagonal()
    same_person = labels[:, None] == labels[None, :]
    if negatives == "all":
        hinge = F.relu(margin - positive[:, None] + similarity).masked_fill(same_person, 0.0)
        hinge_t = F.relu(margin - positive[None, :] + similarity).masked_fill(same_person, 0.0)
        return (hinge.sum(dim=1) + hinge_t.sum(dim=0)).mean()
    wrong = similarity.masked_fill(same_person, float("-inf"))
    hardest_image = wrong.max(dim=1).values  # for each text, the closest wrong image
    hardest_text = wrong.max(dim=0).values  # for each image, the closest wrong text
    text_to_image = F.relu(margin - positive + hardest_image)
    image_to_text = F.relu(margin - positive + hardest_text)
    return (text_to_image + image_to_text).mean()


class CosineClassifier(nn.Module):
    """Identity classifier on L2-normalised features and weights.

    Scale-free in the features, so one classifier serves every alignment's features.
    """

    def __init__(self, embed_dim: int, num_classes: int, scale: float = 16.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(num_classes, embed_dim) * 0.01)
        self.scale = scale

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.scale * F.normalize(features, dim=-1) @ F.normalize(self.weight, dim=-1).T


def identity_classifier(kind: str, embed_dim: int, num_classes: int) -> nn.Module:
    """The shared identity classifier: mia's cosine one (``"cosine"``), or a Linear layer
    with bias on the raw features (``"linear"``, the public MIA re-implementation's), whose
    logits grow with the features' norms and so also pull on them."""
    if kind == "linear":
        return nn.Linear(embed_dim, num_classes)
    return CosineClassifier(embed_dim, num_classes)
