"""Option parsing shared by ``mia train`` and ``mia ablate``: one definition of every
training option, so the two commands cannot drift apart."""

from __future__ import annotations

import click
from click.core import ParameterSource

from mia.cli.params import Number, parse_image_size, parse_weights_option
from mia.core.settings.config import BOUNDS, CHOICES, EVAL_CHUNK, WORKER_CAP, TrainConfig
from mia.core.settings.stages import parse_stage_list


#: (option declaration, TrainConfig field, click keyword arguments); --align is per command
TRAIN_OPTIONS = [
    (("--data",), "data", dict(help="NAME, NAME:PATH or PATH (detected from the annotation file)")),
    (("--stages",), "stages", dict(help="step training: NAME:EPOCHS,... (cumulative) or 'auto' (split --epochs over --align)")),
    (("--weights",), "weights", dict(callback=parse_weights_option, help="score fusion weights, e.g. global=1,part=0.5,fine=0.5 (default 1 each)")),
    (("--loss-weights",), "loss_weights", dict(callback=parse_weights_option, help="per-alignment training loss weights, e.g. global=1,fine=0.5 (default 1 each)")),
    (("--chunker",), "chunker", dict(help="noun-phrase chunker: {default} (default) or spacy:PIPELINE")),
    (("--max-phrases",), "max_phrases", dict(help="noun phrases kept per caption (default {default})")),
    (("--phrase-words",), "phrase_words", dict(help="words kept per phrase (default {default})")),
    (("--image-encoder",), "image_encoder", dict(help="registered image encoder (mia list image-encoder)")),
    (("--text-encoder",), "text_encoder", dict(help="registered text encoder")),
    (("--image-weights",), "image_weights", dict(help="start the image trunk from pretrained weights: imagenet, a torchvision name such as IMAGENET1K_V2, a timm or CLIP pretrained tag or Hugging Face id (docs/towers.md), or a local file; 'none': random weights, whatever a recipe says")),
    (("--text-weights",), "text_weights", dict(help="start the text tower from a pretrained model: a Hugging Face model directory or id (--text-encoder transformer), or a CLIP tag, id or file (--text-encoder clip:ARCH); 'none': random weights")),
    (("--text-lr-mult",), "text_lr_mult", dict(help="learning-rate multiplier of a pretrained text tower (default {default}; 0 freezes it)")),
    (("--phrase-encoding",), "phrase_encoding", dict(help="noun phrases as their own short texts (sequences) or pooled from the caption's outputs (spans); default: the text encoder's")),
    (("--image-size",), "image_size", dict(callback=parse_image_size, help="HEIGHTxWIDTH (default: the image encoder's, 384x128 for the built-ins)")),
    (("--num-parts",), "num_parts", dict(help="horizontal image stripes K (default {default})")),
    (("--image-heads",), "image_heads", dict(help="the image encoder's output heads: Linear + BatchNorm (linear-bn) or Linear alone (linear, the public MIA re-implementation's); default {default}")),
    (("--embed-dim",), "embed_dim", dict(help="joint embedding size (default {default})")),
    (("--epochs",), "epochs", dict(help="training epochs (default {default})")),
    (("--batch-size",), "batch_size", dict(help="pairs per batch (default {default})")),
    (("--lr",), "lr", dict(help="peak learning rate (default {default})")),
    (("--weight-decay",), "weight_decay", dict(help="weight decay: decoupled with adamw, an L2 term with adam (default {default})")),
    (("--optimizer",), "optimizer", dict(help="adamw (decoupled weight decay) or adam (decay as an L2 term, the public MIA re-implementation's); default {default}")),
    (("--augment",), "augment", dict(help="training augmentation: flip-crop (flip and padded random crop) or flip (the public MIA re-implementation's); default {default}")),
    (("--frozen-trunk-epochs",), "frozen_trunk_epochs", dict(help="epochs at the start with the image trunk frozen (its heads, the text tower and the alignments train), as the public MIA re-implementation starts; default {default}")),
    (("--identity-epochs",), "identity_epochs", dict(help="epochs at the start that train the identity loss alone, no ranking loss (the public MIA re-implementation's first stage); default {default}")),
    (("--warmup-epochs",), "warmup_epochs", dict(help="linear warm-up length (default {default})")),
    (("--stage-schedule",), "stage_schedule", dict(help="with --stages: one warm-up and cosine decay over the run (continue) or one per stage (restart); default {default}")),
    (("--margin",), "margin", dict(help="ranking-loss margin (default {default})")),
    (("--ranking-negatives",), "ranking_negatives", dict(help="in-batch negatives of the ranking loss: the hardest or all of them, summed (the public MIA re-implementation's); default {default}")),
    (("--id-weight",), "id_weight", dict(help="identity-loss weight (default {default})")),
    (("--id-features",), "id_features", dict(help="what the identity loss classifies: every alignment's features (all) or the global vectors only (global, the public MIA re-implementation's); default {default}")),
    (("--id-classifier",), "id_classifier", dict(help="the identity classifier: cosine (scale-free) or linear (with bias, the public MIA re-implementation's); default {default}")),
    (("--rga-temperature",), "rga_temperature", dict(help="the global-part attention's softmax temperature: fixed at 1 (the public MIA re-implementation's, better on measurement: docs/method.md) or learned; default {default}")),
    (("--rga-mlp",), "rga_mlp", dict(help="where the global-part attention's relation MLP sits: on the text's global vector, weighing the raw stripes and phrases (guide), or on the stripes and phrases, weighing and summing its outputs (parts, the paper's and the public MIA re-implementation's); default {default}")),
    (("--min-word-freq",), "min_word_freq", dict(help="vocabulary: minimum count in train captions (default {default})")),
    (("--max-words",), "max_words", dict(help="caption length cap in tokens (default {default})")),
    (("--seed",), "seed", dict(help="random seed (default {default})")),
    (("--device",), "device", dict(help="auto (CUDA if present), cpu or cuda")),
    (("--workers",), "workers", dict(help="data-loading worker processes (default: cores-1, at most {workers_cpu} on CPU, at most {workers_cuda} on GPU)")),
    (("--eval-chunk",), "eval_chunk", dict(help="queries scored at a time (bounds memory; default {eval_cpu} on CPU, {eval_cuda} on GPU)")),
    (("--select-by",), "select_by", dict(help="validation metric that picks best.pt (default {default}: the less noisy one, docs/method.md)")),
    (("--val-share",), "val_share", dict(help="a data set without a val split gets one: this share of the training people (default {default})")),
    (("--select-on-test",), "select_on_test", dict(is_flag=True, default=None, help="without a val split, pick the epoch on test instead (every number is then labelled as selected on test)")),
    (("--stop-after",), "stop_after", dict(help="stop after this many epochs of the schedule (resume later)")),
    (("--quiet",), "quiet", dict(is_flag=True, default=None, help="no progress bars")),
    (("--tensorboard",), "tensorboard", dict(is_flag=True, default=None, help="also write each epoch's losses and validation metrics as TensorBoard events (RUN/tensorboard; pip install 'mia-reid[tensorboard]')")),
    (("--compile",), "compile", dict(help="torch.compile the training step; "
                                     "reduce-overhead replays it as CUDA graphs (the fast path on a GPU; compiling "
                                     "takes a minute or two at the start)")),
]


def shown_default(value) -> str:
    """A default as a user would type it on the command line."""
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    return str(value)


def _option_kwargs(field: str, kwargs: dict) -> dict:
    """An option's click arguments, completed from the configuration: its type from the
    field's bound or choices, and ``{default}`` in its help from the field's default, so
    neither is typed twice."""
    completed = {"default": None, **kwargs}
    if field in BOUNDS:
        completed["type"] = Number.within(BOUNDS[field])
    elif field in CHOICES:
        completed["type"] = click.Choice(CHOICES[field])
    completed["help"] = kwargs["help"].format(default=shown_default(getattr(TrainConfig(), field)),
                                              eval_cpu=EVAL_CHUNK["cpu"], eval_cuda=EVAL_CHUNK["cuda"],
                                              workers_cpu=WORKER_CAP["cpu"], workers_cuda=WORKER_CAP["cuda"])
    return completed


def train_options(command):
    """Attach every training option; all default to None so explicit values can be told apart."""
    for declaration, field, kwargs in reversed(TRAIN_OPTIONS):
        command = click.option(*declaration, **_option_kwargs(field, kwargs))(command)
    return command


def explicit_options(ctx: click.Context, values: dict) -> dict:
    """The TrainConfig fields the user actually gave (command line or environment)."""
    given = {}
    for _declaration, field, _kwargs in TRAIN_OPTIONS:
        source = ctx.get_parameter_source(field)
        if values.get(field) is not None and source not in (None, ParameterSource.DEFAULT):
            given[field] = values[field]
    return given


#: ``--image-weights none``: start from random weights even where a recipe names pretrained ones
NO_WEIGHTS = "none"
WEIGHTS_FIELDS = ("image_weights", "text_weights")


def command_line_values(given: dict) -> dict:
    """The fields the command line sets: explicit ``--stages NAME:EPOCHS,...`` also supply
    ``--align`` and ``--epochs`` when those were not given, so ``--stages global:4,part:2``
    alone is a complete request; ``none`` for a weights option is no weights."""
    values = {field: None if field in WEIGHTS_FIELDS and value == NO_WEIGHTS else value for field, value in given.items()}
    stages = given.get("stages")
    if stages and stages != "auto":
        pairs = parse_stage_list(stages)
        values.setdefault("align", [name for name, _ in pairs])
        values.setdefault("epochs", sum(count for _, count in pairs))
    return values


def config_from(base: TrainConfig | None, given: dict) -> TrainConfig:
    """``base`` (default: the defaults) with the command line's ``given`` fields replaced."""
    data = (base or TrainConfig()).to_dict()
    data.update(command_line_values(given))
    return TrainConfig.from_dict(data)


NO_RECIPE = "none"


def config_file_options(command):
    """``--recipe`` and ``--config``: where a configuration starts before the command line."""
    command = click.option("--config", "config_path", help="a run's config.toml (or any config file) to train "
                           "again; options given here override it")(command)
    return click.option("--recipe", help="a recipe to start from: a name from 'mia recipes' or a .toml file "
                        f"(options given here override it; '{NO_RECIPE}': mia's plain defaults)")(command)


def config_files(recipe: str | None, config: str | None, data: str | None, log) -> list:
    """The recipe and config files under the command line, in order.  A named benchmark
    given alone (``--data cuhk-pedes:DIR``) gets its paper recipe, said on the first line:
    a researcher who names CUHK-PEDES expects MIA as published, not mia's quick defaults
    (global only, a random trunk, ten joint epochs)."""
    from mia.core.data.records import named_dataset
    from mia.core.settings.run_config import default_recipe, load_recipe, read_config_file

    files = []
    dataset = named_dataset(data) if data is not None else None
    if recipe is None and config is None and dataset is not None:
        found = default_recipe(dataset)
        if found is not None:
            name, files = found[0], [found[1]]
            log(f"recipe {name}: {found[1].description} (the default for this data set; "
                f"--recipe {NO_RECIPE} trains with mia's plain defaults instead)")
    elif recipe not in (None, NO_RECIPE):
        files.append(load_recipe(recipe))
    if config is not None:
        files.append(read_config_file(config))
    return files
