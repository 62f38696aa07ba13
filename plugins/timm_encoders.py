"""``--image-encoder timm:NAME``: any image model of timm (``timm.create_model``) as a
stripe encoder.

timm's ``forward_intermediates`` gives every model's last dense map in one layout
(``[B, C, H, W]``): a CNN's feature map, or a ViT's patch tokens laid back on their grid.
Its rows are pooled into the K stripes, the same way as a torchvision trunk's; the
global vector is what timm's own head pools (``forward_head`` with ``pre_logits``: the
class token of a ViT, the average of a CNN's map).  A CNN's stripes come from the final
map that the head pools, which for some (EfficientNet, MobileNetV3) has more channels
than the last block's.

A model with a fixed input size (a ViT's position embeddings) is built for the run's
``--image-size``; timm resamples the embeddings when it loads pretrained weights.  Its
patch rows must cut into ``--num-parts`` equal stripes.

Weights (``--image-weights``): ``imagenet`` (the model's default pretrained tag), a timm
pretrained tag (``a1_in1k``), or a file.  timm keeps its weights on the Hugging Face hub:
they are read from the Hugging Face cache, downloaded there only when the machine may go
online (:func:`mia.core.modeling.pretrained.hub_file`).  Mean, std and the default input size come
from the model's ``pretrained_cfg``.  Needs the extra: ``pip install 'mia-reid[timm]'``.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from urllib.parse import urlparse

import torch
from torch import nn

from mia.core.base.errors import MiaError
from mia.core.data.preprocess import ImagePreprocessing
from mia.core.modeling.pretrained import ALIASES, fetch_url, hub_file
from mia.plugins.torchvision_encoders import StripeEncoder, check_patch_grid

EXTRA = "pip install 'mia-reid[timm]'"
#: what timm looks for in a model repository, in its order
HUB_FILES = ("model.safetensors", "pytorch_model.bin")
WEIGHTS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")


def _timm():
    try:
        import timm
    except ImportError:
        raise MiaError(f"--image-encoder timm:NAME needs the timm extra: {EXTRA}") from None
    return timm


def close_names(name: str, names: list[str]) -> str:
    """``; close names: a, b`` for an unknown ``name``, case aside (empty when nothing is close)."""
    folded = {n.lower(): n for n in names}
    close = [folded[n] for n in difflib.get_close_matches(name.lower(), folded, n=4, cutoff=0.6)]
    return f"; close names: {', '.join(close)}" if close else ""


def timm_encoder(name: str):
    """``timm:NAME`` -> the image-encoder factory of timm model ``NAME`` (an architecture,
    optionally with a pretrained tag: ``resnet50``, ``vit_base_patch16_224.augreg_in21k``)."""
    timm = _timm()
    if not timm.is_model(name):
        arch = name.partition(".")[0]
        raise MiaError(f"--image-encoder timm:{name}: timm has no model '{arch}'{close_names(arch, timm.list_models())}")

    def factory(embed_dim: int, num_parts: int, weights: str | None = None,
                image_size: tuple[int, int] | None = None) -> "TimmEncoder":
        model_name, file, source = _pretrained(timm, name, weights)
        return TimmEncoder(_create(timm, model_name, file, image_size, weights), f"timm:{name}", embed_dim,
                           num_parts, image_size, source)

    return factory


timm_encoder.family = True


def _pretrained(timm, name: str, weights: str | None) -> tuple[str, Path | None, str | None]:
    """(the model name to create, the weights file, where training starts) for
    ``--image-weights``: nothing, a file, or a pretrained tag (``imagenet``: the default)."""
    if not weights:
        return name, None, None
    label = f"--image-weights {weights}"
    path = Path(weights).expanduser()
    if path.is_file() or os.sep in weights or weights.endswith(WEIGHTS_SUFFIXES):
        if not path.is_file():
            raise MiaError(f"{label}: no such file")
        return name, path, f"file:{path.name}"
    arch = name.partition(".")[0]
    wanted = name if weights.lower() in ALIASES else f"{arch}.{weights}"
    try:
        cfg = timm.models.get_pretrained_cfg(wanted)
    except RuntimeError:  # timm's answer to an unknown tag
        cfg = None
    if cfg is None or not (cfg.hf_hub_id or cfg.url):
        tags = [n.partition(".")[2] for n in timm.list_pretrained(f"{arch}.*")]
        raise MiaError(f"{label}: neither a file nor a pretrained tag of timm:{arch} "
                       f"({', '.join(tags) if tags else 'it has no pretrained weights'})")
    full = f"{cfg.architecture}.{cfg.tag}"
    if cfg.hf_hub_id:
        file = hub_file(cfg.hf_hub_id, (cfg.hf_hub_filename,) if cfg.hf_hub_filename else HUB_FILES, label)
    else:  # a few old models are only at a URL: timm keeps those in the torch hub cache
        file = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(cfg.url).path)
        if not file.is_file():
            fetch_url(cfg.url, file, label)
    return full, file, f"timm:{full}"


def _create(timm, model_name: str, file: Path | None, image_size, weights: str | None) -> nn.Module:
    """The timm model without its classifier, for ``image_size`` when its input size is
    fixed, with the weights of ``file`` (timm's own loading: it resamples a ViT's position
    embeddings and drops the classifier's weights)."""
    options = {"num_classes": 0}
    try:
        fixed = getattr(timm.models.get_pretrained_cfg(model_name), "fixed_input_size", False)
    except RuntimeError:  # an unknown tag: create_model below says so
        fixed = False
    if image_size and fixed:
        options["img_size"] = tuple(image_size)
    if file is not None:
        options.update(pretrained=True, pretrained_cfg_overlay={"file": str(file)})
    try:
        return timm.create_model(model_name, **options)
    except (RuntimeError, ValueError, KeyError, TypeError, OSError) as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
        what = f"--image-weights {weights}: not weights of timm:{model_name}" if file else \
            f"--image-encoder timm:{model_name}"
        raise MiaError(f"{what} ({first})") from None


class TimmEncoder(StripeEncoder):
    """A timm model -> (global ``[B, D]``, stripes ``[B, K, D]``); see the module doc."""

    def __init__(self, model: nn.Module, label: str, embed_dim: int, num_parts: int,
                 image_size: tuple[int, int] | None, weights_source: str | None):
        cfg = model.pretrained_cfg
        size = tuple(image_size or cfg["input_size"][1:])
        pooled, feature_map, tokens = _probe(model, size, f"--image-encoder {label} at {size[0]}x{size[1]}")
        super().__init__(model, feature_map.shape[1], embed_dim, num_parts, weights_source,
                         global_channels=pooled.shape[1])
        self.preprocessing = ImagePreprocessing(tuple(cfg["mean"]), tuple(cfg["std"]), size)
        if tokens:
            check_patch_grid(label, size, tuple(feature_map.shape[2:]), num_parts)

    def pooled_rows(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pooled, feature_map, _ = _dense(self.trunk, images)
        return pooled, feature_map.mean(dim=3)


def _dense(model: nn.Module, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """(pooled ``[B, C']``, dense map ``[B, C, H, W]``, token model?) in one forward.  A
    token model's final output is ``[B, N, C]``: its map is timm's patch grid of the last
    block; any other model's map is its final output (channels-last for some)."""
    final, (patches,) = model.forward_intermediates(images, indices=1, norm=True, output_fmt="NCHW")
    pooled = model.forward_head(final, pre_logits=True)
    if final.ndim == 3:
        return pooled, patches, True
    return pooled, final.permute(0, 3, 1, 2) if getattr(model, "output_fmt", "NCHW") == "NHWC" else final, False


@torch.no_grad()
def _probe(model: nn.Module, size: tuple[int, int], label: str) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """:func:`_dense` of one blank image (eval mode, then back): the widths and the grid the
    heads and the stripe check need."""
    training = model.training
    model.eval()
    try:
        return _dense(model, torch.zeros(1, 3, *size))
    except (RuntimeError, AssertionError, NotImplementedError, AttributeError, ValueError) as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
        raise MiaError(f"{label}: the model cannot read this input ({first})") from None
    finally:
        model.train(training)
