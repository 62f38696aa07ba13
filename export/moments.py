"""Search results over footage: people's passages (moments), not crops.

A video index (:mod:`mia.export.video_index`) holds a few crops of each track; a search
ranks the crops and keeps each track once, at its best-matching crop, so the same person
does not fill the page with forty near-identical frames.  A moment carries what someone
reviewing footage needs: the video, when the person is in view (the track's first and
last sampled second), the crop that matched, and the frame it came from with its box.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from typing import TYPE_CHECKING

from mia.export.footage import timestamp

if TYPE_CHECKING:
    from mia.export.runtime import Retriever
    from mia.export.store import GalleryStore

#: the files beside a video index's store (written by :mod:`mia.export.video_index`)
VIDEOS, MOMENTS = "videos.json", "moments.json"


@dataclass(frozen=True)
class Moment:
    """One track as a search result; ``entry`` is its best crop's row in the index."""

    entry: int
    score: float
    video: str
    track: int
    start: float
    end: float
    frame: int
    time: float
    box: tuple[float, float, float, float]
    frame_size: tuple[int, int]
    crop: Path
    frame_image: Path

    @property
    def span(self) -> str:
        return f"{timestamp(self.start)}-{timestamp(self.end)}"

    def as_dict(self) -> dict:
        data = asdict(self)
        data.update(crop=str(self.crop), frame_image=str(self.frame_image), span=self.span,
                    box=list(self.box), frame_size=list(self.frame_size))
        return data


class MomentIndex:
    """The moments of a video index: which track and frame each entry belongs to."""

    def __init__(self, store: GalleryStore):
        self.store = store
        self.videos = json.loads((store.root / VIDEOS).read_text(encoding="utf-8"))
        self.moments = json.loads((store.root / MOMENTS).read_text(encoding="utf-8"))
        self.spans = {(number, track["id"]): (track["start"], track["end"])
                      for number, video in enumerate(self.videos) for track in video["tracks"]}
        self.crops_per_track = max((v["settings"]["crops_per_track"] for v in self.videos), default=1)

    @staticmethod
    def holds(store: GalleryStore) -> bool:
        return bool(store.meta.get("video"))

    def frame_image(self, entry: int) -> Path:
        """The (downscaled) frame that ``entry``'s crop was cut from."""
        return self.store.root / self.moments[entry]["frame_image"]

    def moment(self, entry: int, score: float) -> Moment:
        found, video = self.moments[entry], self.videos[self.moments[entry]["video"]]
        start, end = self.spans[found["video"], found["track"]]
        return Moment(entry, score, video["path"], found["track"], start, end, found["frame"], found["time"],
                      tuple(found["box"]), (video["width"], video["height"]), self.store.paths[entry],
                      self.frame_image(entry))

    def search(self, retriever: Retriever, query: str, top_k: int, rerank: int | None) -> list[Moment]:
        """The ``top_k`` best tracks, each at its best crop.  Enough crops are ranked that
        ``top_k`` distinct tracks are among them even when every track's crops rank together."""
        wanted = top_k * self.crops_per_track
        rows, scores = self.store.ranked_rows(retriever, query, wanted, None if rerank is None else max(rerank, wanted))
        seen, found = set(), []
        for row, score in zip(rows, scores):
            key = (self.moments[row]["video"], self.moments[row]["track"])
            if key not in seen:
                seen.add(key)
                found.append(self.moment(int(row), float(score)))
                if len(found) == top_k:
                    break
        return found

