"""Model assembly (timm/open_clip style): ``create_model(spec)`` builds the two towers and
the alignments from their registered names; ``encode_image`` / ``encode_text`` keep the
towers separable so that each exports on its own.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import nn

from mia.core.modeling.alignment import Alignment, LossSettings, identity_classifier, ranking_loss
from mia.core.base.errors import MiaError
from mia.core.modeling.features import ImageFeatures, TextFeatures
from mia.core.registry.plugins import get_component
from mia.core.settings.stages import canonical_alignments
from mia.core.data.preprocess import IMAGENET_MEAN, IMAGENET_STD, ImagePreprocessing
from mia.core.base.serial import DictRoundTrip
from mia.core.data.text_arrays import TextSettings
from mia.core.data.tokenizer import Vocabulary


@dataclass
class ModelSpec(DictRoundTrip):
    """Everything needed to rebuild a model and its preprocessing; stored in checkpoints."""

    image_encoder: str = "resnet50"
    text_encoder: str = "bigru"
    alignments: list[str] = field(default_factory=lambda: ["global"])
    weights: dict[str, float] = field(default_factory=dict)
    embed_dim: int = 512
    num_parts: int = 6
    image_size: tuple[int, int] | None = None  # None: the image encoder's default
    image_mean: tuple[float, float, float] = IMAGENET_MEAN  # the image encoder's, set by create_model
    image_std: tuple[float, float, float] = IMAGENET_STD
    image_weights: str | None = None  # where the trunk's training started (provenance, not a path to load)
    image_config: dict | None = None  # the image encoder's own settings (e.g. a CLIP tower's activation)
    vocab_size: int = 2
    text_config: dict | None = None  # the text encoder's own settings (e.g. a transformer's architecture)
    text_weights: str | None = None  # where the text tower's training started (provenance)
    phrase_encoding: str | None = None  # sequences or spans; None: the text encoder's default
    num_classes: int = 1
    max_words: int = 64
    max_phrases: int = 10
    phrase_words: int = 6
    chunker: str | None = None
    rga_temperature: str = "learned"  # or "fixed"; "learned" here because a spec saved without the field learned it
    rga_mlp: str = "guide"  # or "parts": where the global-part attention's relation MLP sits
    id_classifier: str = "cosine"  # or "linear" (training only: exported models drop the classifier)
    image_heads: str = "linear-bn"  # or "linear": the image encoder's output heads without their BatchNorm

    def weight(self, alignment: str) -> float:
        return float(self.weights.get(alignment, 1.0))


def fuse(weighted_scores) -> torch.Tensor:
    """``sum_a weight_a * scores_a`` (fp32) over ``(weight, [T, I] scores)`` pairs: the score
    that ranks and that is exported."""
    total = None
    for weight, scores in weighted_scores:
        scores = weight * scores.float()
        total = scores if total is None else total + scores
    return total


class MiaModel(nn.Module):
    """Image tower + text tower + alignments, fused by weighted sum of similarities."""

    def __init__(self, spec: ModelSpec, image_encoder: nn.Module, text_encoder: nn.Module,
                 alignments: dict[str, Alignment]):
        super().__init__()
        self.spec = spec
        self.image_encoder = image_encoder
        self.text_encoder = text_encoder
        self.alignments = nn.ModuleDict(alignments)
        self.classifier = identity_classifier(spec.id_classifier, spec.embed_dim, spec.num_classes)
        #: alignments that score by default (a step-training stage trains fewer than all)
        self.active: list[str] = list(spec.alignments)

    @property
    def uses_phrases(self) -> bool:
        """Whether any built alignment reads noun phrases (decides chunking for training)."""
        return any(a.uses_phrases for a in self.alignments.values())

    @property
    def scoring_needs(self) -> tuple[bool, bool]:
        """(phrases, parts): what the *active* alignments read when scoring."""
        active = [self.alignments[name] for name in self.active]
        return any(a.uses_phrases for a in active), any(a.uses_parts for a in active)

    def text_settings(self) -> TextSettings:
        return TextSettings(self.spec.max_words, self.spec.max_phrases, self.spec.phrase_words,
                            self.spec.phrase_encoding or "sequences")

    @property
    def chunker(self) -> str | None:
        """The chunker spec that made training phrases, or None when no alignment reads them."""
        return self.spec.chunker if self.uses_phrases else None

    def encode_image(self, images: torch.Tensor) -> ImageFeatures:
        return ImageFeatures(*self.image_encoder(images))

    def encode_text(self, tokens: torch.Tensor, phrases: torch.Tensor) -> TextFeatures:
        return TextFeatures(*self.text_encoder(tokens, phrases))

    def similarity(self, text: TextFeatures, image: ImageFeatures, names=None) -> torch.Tensor:
        """Fused ``[T, I]`` score: sum of ``weight * similarity`` over ``names`` (default: active)."""
        names = self.active if names is None else names
        return fuse((self.spec.weight(n), self.alignments[n].similarity(text, image)) for n in names)

    def prepare_gallery(self, image: ImageFeatures, names=None) -> dict[str, tuple[torch.Tensor, ...]]:
        """Each alignment's gallery side (``names``, default: active), computed once so that
        many query chunks can be scored against it with :meth:`score_prepared`."""
        names = self.active if names is None else names
        return {n: self.alignments[n].prepare_gallery(image) for n in names}

    def score_prepared(self, text: TextFeatures, gallery: dict[str, tuple[torch.Tensor, ...]]) -> torch.Tensor:
        """:meth:`similarity` of ``text`` against a gallery from :meth:`prepare_gallery`."""
        return fuse((self.spec.weight(name), self.alignments[name].score_prepared(text, prepared))
                    for name, prepared in gallery.items())

    def forward(self, images: torch.Tensor, tokens: torch.Tensor, phrases: torch.Tensor, labels: torch.Tensor,
                loss_weights: dict[str, float], settings: LossSettings) -> dict[str, torch.Tensor]:
        """One training step's losses (a forward, so DistributedDataParallel can wrap it)."""
        text, image = self.encode_text(tokens, phrases), self.encode_image(images)
        return self.losses(text, image, labels, loss_weights, settings)

    def losses(self, text: TextFeatures, image: ImageFeatures, labels: torch.Tensor,
               loss_weights: dict[str, float], settings: LossSettings = LossSettings()) -> dict[str, torch.Tensor]:
        """Ranking + identity loss of each alignment in ``loss_weights`` (the active stage's),
        scaled by its weight.  Every alignment's identity features go through the shared
        classifier in one call: its ``[identities, D]`` weight (11,003 rows on CUHK-PEDES) is
        normalised once a step, not once per feature."""
        result, owners, features = {}, [], []
        for name, weight in loss_weights.items():
            alignment = self.alignments[name]
            if settings.ranks:
                similarity, own = alignment.training_outputs(text, image)
                result[f"{name}/rank"] = weight * ranking_loss(similarity.float(), labels, settings.margin,
                                                               settings.negatives)
            else:
                own = alignment.identity_features(text, image)
            if own and settings.classifies(name):
                owners.append((name, weight, len(own)))
                features.extend(own)
        if features:
            logits = self.classifier(torch.cat([f.float() for f in features]))
            per_feature = F.cross_entropy(logits, labels.repeat(len(features)), reduction="none")
            per_feature = per_feature.view(len(features), -1).mean(1)
            for (name, weight, _), losses in zip(owners, per_feature.split([count for *_, count in owners])):
                result[f"{name}/id"] = weight * settings.id_weight * losses.mean()
        return result


def encoder_factory(kind: str, name: str) -> Callable:
    """The factory behind ``--image-encoder`` / ``--text-encoder NAME`` (``kind`` is
    ``image-encoder`` or ``text-encoder``).

    A registered name is its own factory.  A *family* stands for a library's whole
    catalogue (``timm``, ``clip``): its registered callable is marked ``family = True``, and
    ``FAMILY:MEMBER`` calls it with ``MEMBER`` to get an ordinary factory back, the way
    ``--chunker NAME:OPTION`` hands its option to a chunker factory.
    """
    family, sep, member = name.partition(":")
    component = get_component(kind, family)
    factory = component.factory
    if not getattr(factory, "family", False):
        if sep:
            raise MiaError(f"--{kind} {name}: '{family}' is a single {kind}, not a family; use --{kind} {family}")
        return factory
    if not member:
        raise MiaError(f"--{kind} {name}: names a family; give one of its members, {component.description}")
    return factory(member)


def factory_options(factory: Callable, **options) -> dict:
    """The keyword ``options`` that ``factory`` takes.  An image encoder's ``image_size`` and
    ``config`` are optional parts of its contract: only factories that name them (or take
    ``**kwargs``) get them, so one written before they existed keeps working."""
    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):  # a builtin or C callable: give it only the contract's core
        return {}
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return options
    return {key: value for key, value in options.items() if key in parameters}


def create_tokenizer(text_encoder: str, texts: Iterable[str], min_freq: int, weights: str | None = None):
    """The tokenizer a text encoder reads with: its own (``factory.build_tokenizer``, e.g. a
    pretrained tower's), else mia's word vocabulary built from the training captions."""
    factory = encoder_factory("text-encoder", text_encoder)
    build = getattr(factory, "build_tokenizer", None)
    if build is not None:
        return build(texts, min_freq, weights)
    return Vocabulary.build(texts, min_freq)


def _phrase_encoding(spec: ModelSpec, factory) -> str:
    supported = tuple(getattr(factory, "phrase_encodings", ("sequences",)))
    if spec.phrase_encoding is None:
        return supported[0]
    if spec.phrase_encoding not in supported:
        raise MiaError(f"--phrase-encoding {spec.phrase_encoding}: the {spec.text_encoder} text encoder "
                       f"supports {', '.join(supported)}")
    return spec.phrase_encoding


def _alignment(name: str, spec: ModelSpec) -> Alignment:
    """An alignment for ``spec``: its factory gets the embedding size, and those of the
    spec's alignment settings that it names (an alignment plugin need not know them)."""
    factory = get_component("alignment", name).factory
    return factory(spec.embed_dim, **factory_options(factory, rga_temperature=spec.rga_temperature,
                                                     rga_mlp=spec.rga_mlp))


def create_model(spec: ModelSpec, image_weights: str | None = None, text_weights: str | None = None) -> MiaModel:
    """Build the model that ``spec`` describes from the registered components.

    ``image_weights``/``text_weights`` (training only) start the towers from pretrained
    weights; a rebuilt model gets its weights from a checkpoint instead.  The encoders
    declare what the spec then records: the image encoder its preprocessing (normalisation
    always, input size when the spec gives none) and its settings (``config``), the text
    encoder its settings and its default phrase encoding.  An image encoder whose factory
    takes ``image_size`` is built for the spec's size (a ViT's patch grid depends on it).
    """
    spec.alignments = canonical_alignments(spec.alignments)
    image_factory = encoder_factory("image-encoder", spec.image_encoder)
    text_factory = encoder_factory("text-encoder", spec.text_encoder)
    alignments = {name: _alignment(name, spec) for name in spec.alignments}
    image_encoder = image_factory(spec.embed_dim, spec.num_parts, weights=image_weights,
                                  **factory_options(image_factory, image_size=spec.image_size, config=spec.image_config))
    spec.image_config = getattr(image_encoder, "config_dict", None)
    if spec.image_heads == "linear":
        if not callable(getattr(image_encoder, "without_head_norms", None)):
            raise MiaError(f"--image-heads linear: the image encoder '{spec.image_encoder}' cannot drop its heads' "
                           "normalisation (it has no without_head_norms method)")
        image_encoder.without_head_norms()
    preprocessing = getattr(image_encoder, "preprocessing", ImagePreprocessing())
    spec.image_mean, spec.image_std = tuple(preprocessing.mean), tuple(preprocessing.std)
    spec.image_size = tuple(spec.image_size or preprocessing.size)
    if image_weights:
        spec.image_weights = getattr(image_encoder, "weights_source", None) or image_weights
    spec.phrase_encoding = _phrase_encoding(spec, text_factory)
    text_encoder = text_factory(spec.vocab_size, spec.embed_dim, phrase_encoding=spec.phrase_encoding,
                                weights=text_weights, config=spec.text_config)
    spec.text_config = getattr(text_encoder, "config_dict", None)
    if text_weights:
        spec.text_weights = getattr(text_encoder, "weights_source", None) or text_weights
    return MiaModel(spec, image_encoder, text_encoder, alignments)
