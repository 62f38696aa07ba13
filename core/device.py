"""Device choice and the precision policy: bf16 autocast + channels_last on CUDA, fp32 on CPU."""

from __future__ import annotations

import contextlib
import functools

import torch

from mia.core.config import DEVICES
from mia.core.errors import MiaError
from mia.core.preprocess import IMAGENET_MEAN, IMAGENET_STD



def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise MiaError(f"--device {name}: CUDA is not available on this machine (use --device cpu or auto)")
        return torch.device(name)
    if name == "cpu":
        return torch.device("cpu")
    raise MiaError(f"--device {name}: expected one of {', '.join(DEVICES)}")


def autocast(device: torch.device):
    """bf16 autocast on CUDA (the speed path), nothing on CPU (exact, reproducible fp32)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def prepare_images(images: torch.Tensor, device: torch.device, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> torch.Tensor:
    """uint8 ``[B, 3, H, W]`` pixels from the loader -> the model's normalised fp32 input on
    ``device`` (``mean``/``std``: the image encoder's): a quarter of the bytes cross to the
    GPU, and the loader workers skip the float maths (which was half their time).  Same
    arithmetic as ``normalize_array``."""
    if images.dtype != torch.uint8:
        raise TypeError(f"prepare_images expects uint8 pixels, got {images.dtype}")
    images = images.to(device, non_blocking=True)
    if device.type == "cuda":
        images = images.contiguous(memory_format=torch.channels_last)
    mean, std = _mean_std(device, tuple(mean), tuple(std))
    return (images.float() / 255.0 - mean) / std


@functools.lru_cache(maxsize=None)
def _mean_std(device: torch.device, mean: tuple, std: tuple) -> tuple[torch.Tensor, torch.Tensor]:
    """The normalisation constants on ``device``, made once: not a host-to-device copy per batch."""
    shape = (1, 3, 1, 1)
    return torch.tensor(mean, device=device).view(shape), torch.tensor(std, device=device).view(shape)
