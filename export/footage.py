"""Reading camera footage: which files are videos, what each holds, and its frames sampled
at a chosen rate (OpenCV's FFmpeg bindings: the decoder of nearly every video tool).

Sampling decodes every frame (``grab``: formats with inter-frame coding need it) but
converts only the sampled ones, and times each by its index and the container's frame
rate.  A file that ends early (a copy cut off, a camera that lost power) yields what it
holds: :attr:`Footage.stopped_at` then says where decoding stopped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from mia.core.base.errors import MiaError
from mia.plugins.detectors._opencv import opencv

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".ts", ".wmv")
#: containers estimate their frame count: a file is truncated only when it ends this many frames early
COUNT_SLACK = 2


def list_videos(source: str | Path, index: Path | None = None) -> list[Path]:
    """The videos of ``--video``: one file, or every video under a folder (recursive, by
    suffix, in a stable order; an ``index`` written inside the folder is not part of it).
    A folder that also holds images is refused: an index is of footage or of crops, and
    which one decides what its results are."""
    source = Path(source)
    if source.is_file():
        return [source]
    if not source.is_dir():
        raise MiaError(f"--video {source}: no such file or directory")
    from mia.export.store import IMAGE_SUFFIXES

    inside = index.resolve() if index is not None else None
    files = sorted(p for p in source.rglob("*") if p.is_file()
                   and (inside is None or not p.resolve().is_relative_to(inside)))
    videos = [p for p in files if p.suffix.lower() in VIDEO_SUFFIXES]
    images = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
    if videos and images:
        raise MiaError(f"--video {source}: holds {len(videos)} video(s) and {len(images)} image(s) "
                       f"(e.g. {images[0].relative_to(source)}); index images with --gallery and videos with "
                       "--video, each into its own index")
    if not videos:
        raise MiaError(f"--video {source}: no videos found ({'/'.join(VIDEO_SUFFIXES)})")
    return videos


@dataclass
class Footage:
    """One opened video: its frame rate, declared frame count and size, and where decoding
    stopped when it ended before its declared end (None while it has not)."""

    path: Path
    fps: float
    frames: int
    width: int
    height: int
    stopped_at: int | None = None

    @property
    def duration(self) -> float:
        return self.frames / self.fps

    def sample_step(self, rate: float) -> float:
        """Frames between two samples at ``rate`` sampled frames per second."""
        if rate > self.fps + 1e-6:
            raise MiaError(f"--fps {rate:g}: above the {self.fps:g} frames per second of {self.path}; "
                           f"give at most {self.fps:g}")
        return self.fps / rate

    def sampled(self, rate: float) -> Iterator[tuple[int, float, np.ndarray]]:
        """(frame index, seconds, RGB ``[H, W, 3]`` uint8) of every sampled frame."""
        cv2 = opencv()
        step, capture = self.sample_step(rate), cv2.VideoCapture(str(self.path))
        try:
            index, next_sample = 0, 0.0
            while capture.grab():
                if index >= round(next_sample):
                    ok, frame = capture.retrieve()
                    if not ok:
                        break
                    yield index, index / self.fps, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
                    next_sample += step
                index += 1
        finally:
            capture.release()
        self.stopped_at = index if index < self.frames - COUNT_SLACK else None


def open_footage(path: Path) -> Footage:
    """``path`` as :class:`Footage`; a file OpenCV cannot decode is one line naming it."""
    cv2 = opencv()
    capture = cv2.VideoCapture(str(path))
    try:
        ok = capture.isOpened() and capture.grab()
        fps, frames = capture.get(cv2.CAP_PROP_FPS), int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        width, height = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    finally:
        capture.release()
    if not ok or width <= 0 or height <= 0:
        raise MiaError(f"{path}: not a video that OpenCV's FFmpeg can decode")
    if not fps > 0 or fps > 1000:
        raise MiaError(f"{path}: the video declares no usable frame rate ({fps:g}); re-encode it with one")
    return Footage(path, fps, max(frames, 1), width, height)


def timestamp(seconds: float) -> str:
    """``mm:ss.s`` (``h:mm:ss.s`` past an hour), as a video player shows time."""
    minutes, secs = divmod(seconds, 60)
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours}:{minutes:02d}:{secs:04.1f}" if hours else f"{minutes:02d}:{secs:04.1f}"
