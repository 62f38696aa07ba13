"""Linking one video's detections into tracks: a person's boxes across sampled frames.

Greedy IoU association with a constant-velocity guess (the SORT idea without its Kalman
filter): each live track predicts its next box from its last two, and each detection
joins the track whose prediction it overlaps most.  A track missed for more than
``max_missed`` samples ends; one seen fewer than ``min_hits`` times is dropped (a
detector's one-frame false alarms).  Written here rather than taken from a library:
norfair pins numpy below 2, motpy and its filterpy are unmaintained, and supervision's
ByteTrack would bring matplotlib, PyAV and SciPy into the video install for this loop,
while its two confidence thresholds assume calibrated scores in [0, 1], which HOG's SVM
margin is not.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Track:
    """One person's passage: the sampled frames they were detected in, with times and boxes."""

    id: int
    frames: list[int] = field(default_factory=list)
    times: list[float] = field(default_factory=list)
    boxes: list[np.ndarray] = field(default_factory=list)  # each [x1, y1, x2, y2, score]
    missed: int = 0

    def predicted(self) -> np.ndarray:
        """Where the next sample should find the person: samples are evenly spaced, so the
        last step repeats once, plus once per sample the track has missed."""
        last = self.boxes[-1][:4]
        if len(self.boxes) < 2:
            return last
        return last + (last - self.boxes[-2][:4]) * (1 + self.missed)

    def add(self, frame: int, seconds: float, box: np.ndarray) -> None:
        self.frames.append(frame)
        self.times.append(seconds)
        self.boxes.append(np.asarray(box, np.float32))
        self.missed = 0


def affinity(predicted: np.ndarray, found: np.ndarray, min_iou: float) -> np.ndarray:
    """How well each detection continues each track: the IoU where it reaches ``min_iou``;
    else a small positive value where the centres are within half a person's height (a
    detector that sees only part of someone, as background subtraction does where their
    clothes match the wall, changes the box more than the person moved); else 0."""
    overlap = iou(predicted, found)
    centres = lambda boxes: (boxes[:, :2] + boxes[:, 2:4]) / 2  # noqa: E731
    distance = np.linalg.norm(centres(predicted)[:, None] - centres(found)[None], axis=2)
    height = np.maximum((predicted[:, 3] - predicted[:, 1])[:, None], (found[:, 3] - found[:, 1])[None])
    near = distance <= 0.5 * height
    return np.where(overlap >= min_iou, overlap, np.where(near, min_iou * 1e-3 * (1 - distance / np.maximum(height, 1e-9)), 0.0))


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``[len(a), len(b)]`` intersection over union of x1, y1, x2, y2 boxes."""
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = np.minimum(a[:, None, 2:4], b[None, :, 2:4])
    inter = np.prod(np.clip(bottom_right - top_left, 0, None), axis=2)
    area = lambda boxes: np.prod(boxes[:, 2:4] - boxes[:, :2], axis=1)  # noqa: E731
    return inter / np.maximum(area(a)[:, None] + area(b)[None, :] - inter, 1e-9)


class IouTracker:
    """Tracks of one video, fed a sampled frame at a time.  Ended tracks are handed out as
    they end (:meth:`pop_ended`), so a long video is processed holding only the live ones."""

    def __init__(self, min_iou: float = 0.2, max_missed: int = 2, min_hits: int = 2):
        self.min_iou, self.max_missed, self.min_hits = min_iou, max_missed, min_hits
        self.live: list[Track] = []
        self.ended: list[Track] = []
        self.next_id = 0

    @property
    def settings(self) -> dict:
        return {"min_iou": self.min_iou, "max_missed": self.max_missed, "min_hits": self.min_hits}

    def update(self, frame: int, seconds: float, detections: np.ndarray) -> list[int]:
        """Feed one sampled frame's ``[N, 5]`` detections; the track id each one joined."""
        joined = [-1] * len(detections)
        if self.live and len(detections):
            overlap = affinity(np.stack([t.predicted() for t in self.live]), detections[:, :4], self.min_iou)
            while overlap.size and overlap.max() > 0:
                t, d = np.unravel_index(np.argmax(overlap), overlap.shape)
                self.live[t].add(frame, seconds, detections[d])
                joined[d] = self.live[t].id
                overlap[t, :], overlap[:, d] = -1, -1
        for track in self.live:
            if track.frames[-1] != frame:
                track.missed += 1
        for d in (d for d, track_id in enumerate(joined) if track_id < 0):
            track = Track(self.next_id)
            track.add(frame, seconds, detections[d])
            self.live.append(track)
            joined[d] = track.id
            self.next_id += 1
        self.ended += [t for t in self.live if t.missed > self.max_missed]
        self.live = [t for t in self.live if t.missed <= self.max_missed]
        return joined

    def pop_ended(self, final: bool = False) -> list[Track]:
        """Tracks that ended since the last call (every live one too with ``final``: the
        video is over) and were seen at least ``min_hits`` times; shorter ones are dropped."""
        if final:
            self.ended, self.live = self.ended + self.live, []
        ended, self.ended = self.ended, []
        return [t for t in ended if len(t.frames) >= self.min_hits]

    def live_ids(self) -> set[int]:
        return {t.id for t in self.live}
