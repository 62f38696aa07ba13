"""Image preprocessing shared by training and the torch-free ONNX runtime.

PIL + numpy only: the deployed retriever must turn a camera crop into exactly the array
the model saw during evaluation.  Both resize with :func:`to_uint8_chw`; the runtime then
normalises with :func:`normalize_array`, training and evaluation with the same arithmetic
in torch on the model's device (``mia.core.runtime.policy.prepare_images``), so that data-loader
workers ship 1-byte pixels and never spend their time on float maths.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ImagePreprocessing:
    """What an image encoder expects: its normalisation and its default input size.

    Encoders own this (a CLIP tower has other statistics than an ImageNet CNN); the model
    records it in checkpoints and manifests so training, evaluation and the deployed
    runtime all feed the encoder the same numbers.
    """

    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    size: tuple[int, int] = (384, 128)  # (height, width): the paper's pedestrian crops


def load_rgb(path: str | Path) -> Image.Image:
    """Any mode (L, P, RGBA, CMYK, 16-bit) and size -> RGB; transparency over white."""
    with Image.open(path) as image:
        image.load()
        if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
            rgba = image.convert("RGBA")
            background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            return Image.alpha_composite(background, rgba).convert("RGB")
        if image.mode.startswith("I;16") or image.mode == "I":
            array = np.asarray(image, dtype=np.float64)
            scaled = (array / max(array.max(), 1.0) * 255.0).astype(np.uint8)
            return Image.fromarray(scaled).convert("RGB")
        return image.convert("RGB")


def to_uint8_chw(image: Image.Image, size: tuple[int, int]) -> np.ndarray:
    """Resize to ``size`` = (height, width); uint8 CHW pixels."""
    height, width = size
    if image.size != (width, height):
        image = image.resize((width, height), Image.BILINEAR)
    return np.ascontiguousarray(np.asarray(image, dtype=np.uint8).transpose(2, 0, 1))


def normalize_array(pixels: np.ndarray, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> np.ndarray:
    """uint8 ``[..., 3, H, W]`` -> float32 ``(x / 255 - mean) / std`` (the model's input)."""
    shape = (3, 1, 1)
    array = pixels.astype(np.float32) / np.float32(255.0)
    return (array - np.asarray(mean, np.float32).reshape(shape)) / np.asarray(std, np.float32).reshape(shape)


def load_image_array(path: str | Path, size: tuple[int, int], mean=IMAGENET_MEAN, std=IMAGENET_STD) -> np.ndarray:
    """The evaluation-time input for one image file."""
    return normalize_array(to_uint8_chw(load_rgb(path), size), mean, std)


def augment(image: Image.Image, size: tuple[int, int], rng: random.Random, crop: bool = True) -> Image.Image:
    """Training augmentation: horizontal flip and a padded random crop (re-id standard; the
    public re-implementation flips only: ``crop=False``).

    Colours are never jittered: colour words are most of what a description says.
    """
    height, width = size
    image = image.resize((width, height), Image.BILINEAR)
    if rng.random() < 0.5:
        image = image.transpose(Image.FLIP_LEFT_RIGHT)
    if not crop:
        return image
    pad_y, pad_x = max(1, height // 24), max(1, width // 12)
    padded = Image.new("RGB", (width + 2 * pad_x, height + 2 * pad_y))
    padded.paste(image, (pad_x, pad_y))
    left, top = rng.randint(0, 2 * pad_x), rng.randint(0, 2 * pad_y)
    return padded.crop((left, top, left + width, top + height))
