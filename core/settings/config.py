"""The training configuration: one dataclass that the CLI fills and checkpoints keep."""

from __future__ import annotations

from dataclasses import dataclass, field

from mia.core.base.bounds import COUNT, NON_NEGATIVE, NON_NEGATIVE_INT, POSITIVE, Bound
from mia.core.base.errors import MiaError
from mia.core.base.serial import DictRoundTrip
from mia.core.data.text_arrays import PHRASE_ENCODINGS

#: fields that may differ between a run and its resumption (they do not change results)
RUN_ONLY_FIELDS = ("device", "workers", "out", "stop_after", "eval_chunk", "quiet", "compile", "tensorboard")

#: what ``--device`` accepts (auto: CUDA when present)
DEVICES = ("auto", "cpu", "cuda")

#: how the learning-rate schedule runs over the stages of --stages
STAGE_SCHEDULES = ("continue", "restart")

#: which in-batch negatives the ranking loss uses (mia.core.modeling.alignment.ranking_loss)
RANKING_NEGATIVES = ("hardest", "all")

#: whose features the identity loss classifies: every alignment's (mia's) or the global
#: alignment's image and caption vectors only (the public re-implementation's)
ID_FEATURES = ("all", "global")

#: the identity classifier: cosine (mia's) or a Linear layer with bias, the public
#: re-implementation's (mia.core.modeling.alignment.identity_classifier)
ID_CLASSIFIERS = ("cosine", "linear")

#: the image encoder's output heads: Linear + BatchNorm (mia's) or Linear alone, the public
#: re-implementation's (plugins/torchvision_encoders.py)
IMAGE_HEADS = ("linear-bn", "linear")

#: the global-part alignment's attention temperature: learned, or fixed at 1 (plugins/alignments/part_align.py)
RGA_TEMPERATURES = ("learned", "fixed")

#: where the global-part attention's relation MLP sits: on the text's global vector (mia's)
#: or on the stripes and phrases it weighs, the paper's and the public re-implementation's
#: (plugins/alignments/part_align.py)
RGA_MLPS = ("guide", "parts")

#: the optimiser: AdamW (decoupled weight decay) or Adam with the decay as an L2 term in the
#: gradient, the public re-implementation's (core/training/train.py)
OPTIMIZERS = ("adamw", "adam")

#: training augmentation: flip and padded random crop, or flip alone, the public
#: re-implementation's (core/data/preprocess.py)
AUGMENTATIONS = ("flip-crop", "flip")

#: validation metrics that may pick the best epoch
SELECTION_METRICS = ("R1", "mAP")

#: ``torch.compile`` modes for ``--compile``; reduce-overhead replays the step as CUDA graphs
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")

#: queries scored at a time by device kind, unless ``--eval-chunk`` says otherwise: bounded
#: memory on a CPU, fewer kernel launches (which bind scoring there) on a GPU
EVAL_CHUNK = {"cpu": 256, "cuda": 1024}

#: data-loading workers at most, by device kind: on the CPU the same cores run the model;
#: on a GPU, enough decoders to keep its step fed
WORKER_CAP = {"cpu": 2, "cuda": 16}

#: the bounds of every numeric training option (None, where a field allows it, means "the
#: policy decides" and is not bounded); the command line parses with the same bounds
BOUNDS: dict[str, Bound] = {
    "text_lr_mult": NON_NEGATIVE, "num_parts": COUNT, "embed_dim": COUNT, "epochs": COUNT,
    "batch_size": Bound(int, minimum=2),  # the ranking loss needs in-batch negatives
    "lr": POSITIVE, "weight_decay": NON_NEGATIVE, "warmup_epochs": NON_NEGATIVE, "margin": NON_NEGATIVE,
    "id_weight": NON_NEGATIVE, "min_word_freq": COUNT, "max_words": COUNT, "max_phrases": COUNT,
    "phrase_words": COUNT, "seed": NON_NEGATIVE_INT, "workers": NON_NEGATIVE_INT, "eval_chunk": COUNT,
    "stop_after": COUNT, "val_share": Bound(float, above=0, maximum=0.9),
    "frozen_trunk_epochs": NON_NEGATIVE_INT, "identity_epochs": NON_NEGATIVE_INT,
}

#: the allowed values of every training option that is a choice
CHOICES: dict[str, tuple[str, ...]] = {
    "phrase_encoding": PHRASE_ENCODINGS, "device": DEVICES, "compile": COMPILE_MODES,
    "select_by": SELECTION_METRICS, "ranking_negatives": RANKING_NEGATIVES, "stage_schedule": STAGE_SCHEDULES,
    "id_features": ID_FEATURES, "rga_temperature": RGA_TEMPERATURES, "rga_mlp": RGA_MLPS,
    "id_classifier": ID_CLASSIFIERS, "image_heads": IMAGE_HEADS, "optimizer": OPTIMIZERS,
    "augment": AUGMENTATIONS,
}


@dataclass
class TrainConfig(DictRoundTrip):
    data: str = "synthpedes"
    align: list[str] = field(default_factory=lambda: ["global"])
    stages: str | None = None
    weights: dict[str, float] = field(default_factory=dict)
    loss_weights: dict[str, float] = field(default_factory=dict)
    chunker: str = "rules"
    image_encoder: str = "resnet50"
    text_encoder: str = "bigru"
    image_weights: str | None = None
    text_weights: str | None = None
    text_lr_mult: float = 0.1
    phrase_encoding: str | None = None
    image_size: tuple[int, int] | None = None  # None: the image encoder's default (384x128 for the built-ins)
    num_parts: int = 6
    image_heads: str = "linear-bn"  # or "linear", the public re-implementation's (docs/method.md)
    embed_dim: int = 512
    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    optimizer: str = "adamw"  # or "adam" (coupled L2 decay), the public re-implementation's (docs/method.md)
    warmup_epochs: float = 1.0
    stage_schedule: str = "continue"  # "restart": each stage of --stages warms up and decays on its own
    margin: float = 0.2
    ranking_negatives: str = "hardest"  # or "all", the public re-implementation's (docs/method.md)
    id_weight: float = 1.0
    id_features: str = "all"  # or "global", the public re-implementation's (docs/method.md)
    id_classifier: str = "cosine"  # or "linear", the public re-implementation's (docs/method.md)
    rga_temperature: str = "fixed"  # at 1, the public re-implementation's; "learned" lost to it (docs/method.md)
    rga_mlp: str = "guide"  # or "parts", the public re-implementation's (docs/method.md)
    augment: str = "flip-crop"  # or "flip", the public re-implementation's (docs/method.md)
    frozen_trunk_epochs: int = 0  # first epochs with the image trunk frozen, as the re-implementation starts
    identity_epochs: int = 0  # first epochs with the identity loss alone, the re-implementation's first stage
    min_word_freq: int = 2
    max_words: int = 64
    max_phrases: int = 10
    phrase_words: int = 6
    seed: int = 0
    device: str = "auto"
    workers: int | None = None
    eval_chunk: int | None = None  # None: the execution policy's (mia.core.runtime.policy)
    out: str = "runs/mia"
    stop_after: int | None = None
    select_by: str = "mAP"  # the validation metric that picks best.pt: the less noisy one (docs/method.md)
    val_share: float = 0.1  # share of training people carved into val when a data set has none
    select_on_test: bool = False  # pick the epoch on test when there is no val (labelled wherever reported)
    quiet: bool = False
    compile: str | None = None
    tensorboard: bool = False

    def validate(self) -> None:
        """The same bounds the command line enforces, for Python callers and resumed configs."""
        problem = self.first_problem()
        if problem is not None:
            name, expected, got = problem
            raise MiaError(f"--{name.replace('_', '-')}: expected {expected}, got {got}")

    def first_problem(self) -> tuple[str, str, object] | None:
        """(field, what is expected, its value) of the first out-of-bounds field, or None."""
        for name, bound in BOUNDS.items():
            value = getattr(self, name)
            if value is not None and not bound.holds(value):
                return name, bound.expected(), value
        for name, choices in CHOICES.items():
            value = getattr(self, name)
            if value is not None and value not in choices:
                return name, f"one of {', '.join(choices)}", value
        weights_bound = NON_NEGATIVE
        for name in ("weights", "loss_weights"):
            if not all(weights_bound.holds(w) for w in getattr(self, name).values()):
                return name, f"weights that are each {weights_bound.expected()}", getattr(self, name)
        if self.frozen_trunk_epochs > self.epochs:
            return "frozen_trunk_epochs", f"at most --epochs ({self.epochs})", self.frozen_trunk_epochs
        if self.identity_epochs >= self.epochs:
            return "identity_epochs", f"fewer than --epochs ({self.epochs}): later epochs train the ranking", \
                self.identity_epochs
        if self.identity_epochs and not self.id_weight:
            return "identity_epochs", "0 while --id-weight is 0 (there is no identity loss to train)", \
                self.identity_epochs
        if self.image_size is not None and min(self.image_size) < 32:
            return "image_size", "at least 32x32", self.image_size
        return None

    def differences(self, other: "TrainConfig") -> list[str]:
        """Names of result-changing fields where two configs disagree."""
        mine, theirs = self.to_dict(), other.to_dict()
        return [k for k in mine if k not in RUN_ONLY_FIELDS and mine[k] != theirs[k]]
