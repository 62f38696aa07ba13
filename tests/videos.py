"""A short generated street video for the video tests: synthpedes people (their crops)
composited onto a still, textured background, each walking across it in its own span of
time.  Written as Motion-JPEG AVI, which every OpenCV build reads and writes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

FPS = 10
SIZE = (320, 180)  # width, height


@dataclass(frozen=True)
class Walker:
    """One person: the crop composited, when they walk across (seconds), and which way."""

    crop: Path
    start: float
    end: float
    leftwards: bool = False


def background(seed: int = 0) -> np.ndarray:
    """A wall over a pavement, with blotchy texture: no motion of its own."""
    rng = np.random.default_rng(seed)
    width, height = SIZE
    rows = np.where(np.arange(height)[:, None] < height * 0.55, 150.0, 95.0)
    blotch = np.kron(rng.normal(0, 10, (height // 10 + 1, width // 10 + 1)), np.ones((10, 10)))[:height, :width]
    image = rows + blotch
    return np.clip(np.stack([image, image * 0.95, image * 0.9], axis=2), 0, 255).astype(np.uint8)


def write_video(path: Path, walkers: list[Walker], seconds: float, fps: int = FPS, codec: str = "MJPG") -> list[dict]:
    """Write the video; each walker's true boxes and span (what a tracker should find)."""
    import cv2

    width, height = SIZE
    crops = [np.asarray(Image.open(w.crop).convert("RGB")) for w in walkers]
    truth = [{"start": None, "end": None, "boxes": {}} for _ in walkers]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), fps, SIZE)
    base = background()
    for index in range(int(seconds * fps)):
        now, frame = index / fps, base.copy()
        for walker, crop, seen in zip(walkers, crops, truth):
            if not walker.start <= now <= walker.end:
                continue
            h, w = crop.shape[:2]
            top = height - h - 8  # feet on the pavement
            progress = (now - walker.start) / (walker.end - walker.start)
            left = int(round((1 - progress if walker.leftwards else progress) * (width - w)))
            frame[top:top + h, left:left + w] = crop
            seen["start"] = now if seen["start"] is None else seen["start"]
            seen["end"] = now
            seen["boxes"][index] = (left, top, left + w, top + h)
        writer.write(np.ascontiguousarray(frame[:, :, ::-1]))
    writer.release()
    return truth
