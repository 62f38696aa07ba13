"""The training configuration: one dataclass that the CLI fills and checkpoints keep."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from mia.core.errors import MiaError
from mia.core.serial import DictRoundTrip
from mia.core.text_arrays import PHRASE_ENCODINGS

#: fields that may differ between a run and its resumption (they do not change results)
RUN_ONLY_FIELDS = ("device", "workers", "out", "stop_after", "eval_chunk", "quiet", "compile", "tensorboard")

#: what ``--device`` accepts (auto: CUDA when present)
DEVICES = ("auto", "cpu", "cuda")

#: which in-batch negatives the ranking loss uses (core.alignment.ranking_loss)
RANKING_NEGATIVES = ("hardest", "all")

#: how the learning-rate schedule runs over the stages of --stages
STAGE_SCHEDULES = ("continue", "restart")

#: validation metrics that may pick the best epoch
SELECTION_METRICS = ("R1", "mAP")

#: ``torch.compile`` modes for ``--compile``; reduce-overhead replays the step as CUDA graphs
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


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
    embed_dim: int = 512
    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_epochs: float = 1.0
    stage_schedule: str = "continue"  # "restart": each stage of --stages warms up and decays on its own
    margin: float = 0.2
    ranking_negatives: str = "hardest"  # or "all", the public re-implementation's (docs/method.md)
    id_weight: float = 1.0
    min_word_freq: int = 2
    max_words: int = 64
    max_phrases: int = 10
    phrase_words: int = 6
    seed: int = 0
    device: str = "auto"
    workers: int | None = None
    eval_chunk: int | None = None  # None: the execution policy's (core.policy)
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
        finite = all(math.isfinite(v) for v in (self.lr, self.weight_decay, self.warmup_epochs, self.margin,
                                                   self.id_weight, *self.weights.values(), *self.loss_weights.values()))
        checks = [
            ("epochs", self.epochs >= 1, "at least 1"),
            ("batch-size", self.batch_size >= 2, "at least 2 (the ranking loss needs negatives)"),
            ("lr", math.isfinite(self.lr) and self.lr > 0, "a finite number > 0"),
            ("weight-decay", math.isfinite(self.weight_decay) and self.weight_decay >= 0, "a finite number >= 0"),
            ("warmup-epochs", math.isfinite(self.warmup_epochs) and self.warmup_epochs >= 0, "a finite number >= 0"),
            ("margin", math.isfinite(self.margin) and self.margin >= 0, "a finite number >= 0"),
            ("id-weight", math.isfinite(self.id_weight) and self.id_weight >= 0, "a finite number >= 0"),
            ("text-lr-mult", math.isfinite(self.text_lr_mult) and self.text_lr_mult >= 0, "a finite number >= 0"),
            ("phrase-encoding", self.phrase_encoding in (None, *PHRASE_ENCODINGS), f"one of {', '.join(PHRASE_ENCODINGS)}"),
            ("weights", finite and min(self.weights.values(), default=0) >= 0, "finite weights >= 0"),
            ("loss-weights", finite and min(self.loss_weights.values(), default=0) >= 0, "finite weights >= 0"),
            ("num-parts", self.num_parts >= 1, "at least 1"),
            ("embed-dim", self.embed_dim >= 1, "at least 1"),
            ("image-size", self.image_size is None or min(self.image_size) >= 32, "at least 32x32"),
            ("eval-chunk", self.eval_chunk is None or self.eval_chunk >= 1, "at least 1"),
            ("workers", self.workers is None or self.workers >= 0, "at least 0"),
            ("stop-after", self.stop_after is None or self.stop_after >= 1, "at least 1"),
            ("seed", self.seed >= 0, "at least 0"),
            ("min-word-freq", self.min_word_freq >= 1, "at least 1"),
            ("max-words", self.max_words >= 1, "at least 1"),
            ("max-phrases", self.max_phrases >= 1, "at least 1"),
            ("phrase-words", self.phrase_words >= 1, "at least 1"),
            ("compile", self.compile in (None, *COMPILE_MODES), f"one of {', '.join(COMPILE_MODES)}"),
            ("select-by", self.select_by in SELECTION_METRICS, f"one of {', '.join(SELECTION_METRICS)}"),
            ("ranking-negatives", self.ranking_negatives in RANKING_NEGATIVES, f"one of {', '.join(RANKING_NEGATIVES)}"),
            ("stage-schedule", self.stage_schedule in STAGE_SCHEDULES, f"one of {', '.join(STAGE_SCHEDULES)}"),
            ("val-share", math.isfinite(self.val_share) and 0 < self.val_share <= 0.9, "a number > 0 and <= 0.9"),
        ]
        for option, ok, expected in checks:
            if not ok:
                name = option.replace("-", "_")
                return name, expected, getattr(self, name)
        return None

    def differences(self, other: "TrainConfig") -> list[str]:
        """Names of result-changing fields where two configs disagree."""
        mine, theirs = self.to_dict(), other.to_dict()
        return [k for k in mine if k not in RUN_ONLY_FIELDS and mine[k] != theirs[k]]
