"""What the OpenCV detectors share: OpenCV itself (or one line saying how to install it),
and reading the number after the colon of ``--detector NAME:NUMBER``."""

from __future__ import annotations

import os

from mia.core.base.errors import MiaError


def opencv():
    """``cv2``, which mia's video features need below OpenCV 5 (which moved the HOG
    people detector out of the main package).  FFmpeg's own log is silenced: its lines
    about a damaged file ("moov atom not found") would come before, and say less than, the
    one line mia gives about it."""
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    try:
        import cv2
    except ImportError:
        raise MiaError("video needs OpenCV: pip install 'mia-reid[video]' (opencv-python-headless)") from None
    if not hasattr(cv2, "HOGDescriptor"):
        raise MiaError(f"OpenCV {cv2.__version__} has no HOG people detector (moved out in OpenCV 5): "
                       "pip install 'opencv-python-headless<5'")
    return cv2


def number_option(name: str, option: str, low: float, high: float, meaning: str, example: str) -> float:
    """``option`` as a number from ``low`` to ``high``, or one line naming the detector,
    what the number means and an example."""
    try:
        value = float(option)
    except ValueError:
        value = float("nan")
    if not low <= value <= high:
        raise MiaError(f"--detector {name}:{option}: expected {meaning}, from {low:g} to {high:g}, e.g. {example}")
    return value
