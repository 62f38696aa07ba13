"""``mia index build --video``: camera footage into a gallery index whose entries are
people's passages (tracks), not loose crops.

Each video is sampled (``--fps``), each sampled frame searched for people by a detector
plugin, the detections linked into tracks (:mod:`mia.export.tracking`), and up to
``crops_per_track`` crops of each track kept, spread over its passage (the best-scored
detection of each stretch: a person seen from the front, the side and the back is found
by descriptions of any of them).  The crops and the frames they came from (downscaled)
are written inside the index, so it moves, serves and verifies as one folder, and are
encoded into the same store as a folder's images (:mod:`mia.export.store`).  Beside it:

    videos.json   each video: path, size and mtime, frame rate, frames, size, where
                  decoding stopped if it ended early, the settings it was indexed with,
                  and its tracks (first and last second)
    moments.json  each entry: video, track, frame, second, box, detector score, frame image

Incremental like a folder index: a video whose file and settings are unchanged keeps its
tracks, crops and features (hard-linked from the earlier index, or copied); the rest is
detected and encoded again.  The whole index is written beside ``out`` and moved into
place, so a failure (a video with no people at all, a full disk, Ctrl-C) loses nothing.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
from PIL import Image

from mia.core.base import atomic
from mia.core.base.errors import MiaError
from mia.core.base.progress import Progress
from mia.core.training.outputs import refuse_inputs_inside
from mia.export.footage import Footage, list_videos, open_footage, timestamp
from mia.export.moments import MOMENTS, VIDEOS
from mia.export.runtime import Retriever
from mia.export.store import (DamagedStore, GalleryStore, _fill_arrays, _stamp, check_index_dir, finish_store,
                              open_store)
from mia.export.tracking import IouTracker, Track

CROPS, FRAMES = "crops", "frames"
DEFAULT_DETECTOR = "motion"
DEFAULT_FPS = 2.0
DEFAULT_CROPS_PER_TRACK = 4
FRAME_WIDTH = 480  # stored frames are downscaled to this width: enough to see where, small on disk
CROP_MARGIN = 0.08  # of the box's size, added on each side: re-id crops show a little around the person
JPEG_QUALITY = 90


def create_detector(spec: str, device: str = "cpu"):
    """The detector ``--detector NAME[:OPTION]`` names (registry ``detector``)."""
    from mia.core.registry.plugins import get_component

    name, _, option = spec.partition(":")
    return get_component("detector", name).factory(option or None, device=device)


def video_key(path: Path) -> str:
    """A video's folder name inside the index: readable, and distinct for two files of one name."""
    digest = hashlib.sha256(str(path).encode("utf-8", "surrogateescape")).hexdigest()[:10]
    stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in path.stem)[:40]
    return f"{stem}-{digest}"


def spread_picks(track: Track, count: int) -> list[int]:
    """Up to ``count`` samples of ``track``: the best-scored of each of ``count`` equal stretches."""
    scores = np.array([box[4] for box in track.boxes])
    return sorted({int(stretch[np.argmax(scores[stretch])])
                   for stretch in np.array_split(np.arange(len(scores)), min(count, len(scores)))})


def crop_box(box: np.ndarray, width: int, height: int) -> tuple[int, int, int, int]:
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    dx, dy = (x2 - x1) * CROP_MARGIN, (y2 - y1) * CROP_MARGIN
    return (max(0, int(x1 - dx)), max(0, int(y1 - dy)), min(width, int(round(x2 + dx))), min(height, int(round(y2 + dy))))


class _VideoWriter:
    """Writes one video's tracks into the index as they end: for each, the crops of its
    picked samples and the (downscaled) frames they come from.  Until a track ends, its
    crops wait in memory, and each frame as a small JPEG; nothing else is kept, so an hour
    of footage needs no more memory than a minute."""

    def __init__(self, tmp: Path, footage: Footage, key: str, crops_per_track: int):
        self.tmp, self.footage, self.crops_per_track = tmp, footage, crops_per_track
        self.crops_dir, self.frames_dir = tmp / CROPS / key, tmp / FRAMES / key
        self.crops_dir.mkdir(parents=True)
        self.frames_dir.mkdir(parents=True)
        self.pending: dict[tuple[int, int], Image.Image] = {}  # (track, frame) -> crop
        self.frames: dict[int, bytes] = {}  # frame -> JPEG of the downscaled frame
        self.moments: list[dict] = []
        self.tracks: list[dict] = []

    def add(self, index: int, frame: np.ndarray, detections: np.ndarray, track_ids: list[int]) -> None:
        if not len(detections):
            return
        image = Image.fromarray(frame)
        for box, track in zip(detections, track_ids):
            self.pending[track, index] = image.crop(crop_box(box, self.footage.width, self.footage.height))
        scale = min(1.0, FRAME_WIDTH / self.footage.width)
        if scale < 1.0:
            image = image.resize((round(self.footage.width * scale), round(self.footage.height * scale)),
                                 Image.Resampling.BILINEAR)
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=80)
        self.frames[index] = buffer.getvalue()

    def write(self, ended: list[Track], live: set[int]) -> None:
        """Write ``ended`` tracks, then forget what no live track can still use."""
        for track in ended:
            self.tracks.append({"id": track.id, "start": round(track.times[0], 3), "end": round(track.times[-1], 3),
                                "samples": len(track.frames)})
            for pick in spread_picks(track, self.crops_per_track):
                self._write_moment(track, pick)
        self.pending = {key: crop for key, crop in self.pending.items() if key[0] in live}
        needed = {index for _, index in self.pending}
        self.frames = {index: jpeg for index, jpeg in self.frames.items() if index in needed}

    def _write_moment(self, track: Track, pick: int) -> None:
        index, box = track.frames[pick], track.boxes[pick]
        crop_path = self.crops_dir / f"t{track.id:05d}-f{index:07d}.jpg"
        self.pending[track.id, index].save(crop_path, quality=JPEG_QUALITY)
        frame_path = self.frames_dir / f"f{index:07d}.jpg"
        if not frame_path.exists():
            frame_path.write_bytes(self.frames[index])
        self.moments.append({"crop": crop_path.relative_to(self.tmp / CROPS).as_posix(), "track": track.id,
                             "frame": index, "time": round(track.times[pick], 3),
                             "box": [round(float(v), 1) for v in box[:4]], "score": round(float(box[4]), 4),
                             "frame_image": frame_path.relative_to(self.tmp).as_posix()})


def _index_footage(tmp: Path, footage: Footage, key: str, detector, rate: float, crops_per_track: int,
                   show_progress: bool) -> tuple[_VideoWriter, int]:
    """Detect, track and write one video; (what was written, detections made)."""
    if hasattr(detector, "new_video"):
        detector.new_video()
    tracker, writer = IouTracker(), _VideoWriter(tmp, footage, key, crops_per_track)
    samples = int(footage.frames / footage.sample_step(rate)) + 1
    detections, started = 0, time.perf_counter()
    with Progress(samples, f"detect {footage.path.name}", unit="frame", enabled=show_progress) as bar:
        for index, seconds, frame in footage.sampled(rate):
            found = detector.detect(frame)
            writer.add(index, frame, found, tracker.update(index, seconds, found))
            writer.write(tracker.pop_ended(), tracker.live_ids())
            detections += len(found)
            bar.update(detections=f"{detections / max(time.perf_counter() - started, 1e-9):.1f}/s")
    writer.write(tracker.pop_ended(final=True), set())
    return writer, detections


def _link_tree(source: Path, target: Path) -> None:
    """``source``'s files at ``target``, hard-linked where the file system allows (an index
    rebuilt beside itself shares its unchanged crops), copied where not."""
    shutil.copytree(source, target, copy_function=_link_or_copy)


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _previous(out: Path, retriever: Retriever, log) -> tuple[GalleryStore | None, dict]:
    """An earlier video index in ``out`` built by this model, and its videos by path."""
    if not (out / VIDEOS).is_file():
        return None, {}
    try:
        store = open_store(out, retriever)
        videos = json.loads((out / VIDEOS).read_text(encoding="utf-8"))
        moments = json.loads((out / MOMENTS).read_text(encoding="utf-8"))
    except DamagedStore as exc:
        log(f"index: ignoring the damaged index {out} ({exc}); indexing every video again")
        return None, {}
    except (MiaError, OSError, ValueError):
        return None, {}
    rows = {}
    for row, moment in enumerate(moments):
        rows.setdefault(moment["video"], []).append((row, moment))
    return store, {video["path"]: (video, rows.get(number, [])) for number, video in enumerate(videos)}


def build_video_index(retriever: Retriever, source: str | Path, out: str | Path, detector: str = DEFAULT_DETECTOR,
                      rate: float = DEFAULT_FPS, crops_per_track: int = DEFAULT_CROPS_PER_TRACK, kind: str = "auto",
                      workers: int = 0, batch: int = 64, device: str = "cpu", log=print,
                      show_progress: bool = True) -> Path:
    """Index the videos at ``source`` (a file or a folder) into ``out`` (see the module doc)."""
    out = Path(out)
    videos = [p.resolve() for p in list_videos(source, index=out)]
    refuse_inputs_inside("--out", out, [*videos, retriever.model_dir])
    check_index_dir(out)
    footages = []
    for path in videos:
        try:
            footages.append(open_footage(path))
        except MiaError as exc:
            if len(videos) == 1:
                raise
            log(f"index: skipping {exc}")
    if not footages:
        raise MiaError(f"--video {source}: none of the {len(videos)} videos could be decoded")
    for footage in footages:
        footage.sample_step(rate)  # an impossible --fps is said before anything is decoded
    wanted = {"detector": detector, "fps": rate, "crops_per_track": crops_per_track, "tracker": IouTracker().settings}
    previous, earlier = _previous(out, retriever, log)
    made = None  # the detector, built on first need: a rebuild that reuses everything loads none
    with atomic.atomic_directory(out, replace=True, what="index") as tmp:
        (tmp / CROPS).mkdir()
        (tmp / FRAMES).mkdir()
        records, moments, old_rows, empty = [], [], [], []
        for number, footage in enumerate(footages):
            key, stamp = video_key(footage.path), _stamp(footage.path)
            before, before_rows = earlier.get(str(footage.path), (None, []))
            if before is not None and tuple(before["stamp"]) == stamp and before["settings"] == wanted:
                for sub in (CROPS, FRAMES):
                    if (previous.root / sub / before["key"]).is_dir():
                        _link_tree(previous.root / sub / before["key"], tmp / sub / key)
                record, video_moments = before, [dict(m, video=number) for _, m in before_rows]
                old_rows += [row for row, _ in before_rows]
                log(f"index: {footage.path.name}: unchanged, {len(before['tracks'])} tracks reused")
            else:
                made = made or create_detector(detector, device)
                writer, detections = _index_footage(tmp, footage, key, made, rate, crops_per_track, show_progress)
                video_moments = [dict(m, video=number) for m in writer.moments]
                old_rows += [None] * len(video_moments)
                record = {"path": str(footage.path), "key": key, "stamp": list(stamp), "fps": footage.fps,
                          "frames": footage.frames, "width": footage.width, "height": footage.height,
                          "stopped_at": footage.stopped_at, "settings": wanted,
                          "detector_settings": made.settings, "tracks": writer.tracks}
                log(f"index: {footage.path.name}: {len(writer.tracks)} tracks from {detections} detections "
                    f"in {footage.duration:.1f} s of video")
            if record["stopped_at"] is not None:
                log(f"index: {footage.path} is truncated: decoding stopped at frame {record['stopped_at']} "
                    f"({timestamp(record['stopped_at'] / footage.fps)}) of {footage.frames}; indexed what was decoded")
            if not record["tracks"]:
                empty.append(footage.path.name)
            records.append(record)
            moments += video_moments
        if not moments:
            raise MiaError(f"--video {source}: no people found in {len(footages)} video(s) by --detector {detector} "
                           f"at --fps {rate:g}; nothing to index (try another --detector, or a higher --fps)")
        if empty:
            log(f"index: no people found in {len(empty)} video(s) by --detector {detector} at --fps {rate:g}: "
                f"{', '.join(empty[:5])}{' and more' if len(empty) > 5 else ''}")
        folder = tmp / CROPS
        paths = [folder / m["crop"] for m in moments]
        arrays, kept = _fill_arrays(tmp, retriever, paths, old_rows, previous, workers, batch, show_progress, log,
                                    "index")
        moments = [m for m, keep in zip(moments, kept) if keep]
        paths = [p for p, keep in zip(paths, kept) if keep]
        atomic.write_text(tmp / VIDEOS, json.dumps(records, indent=1))
        atomic.write_text(tmp / MOMENTS, json.dumps(moments))
        settings = finish_store(tmp, folder, paths, [_stamp(p) for p in paths], arrays, kind,
                                {"model_digest": retriever.digest, "features": sorted(arrays),
                                 "shard": {"rank": 0, "world_size": 1}, "video": True}, gallery=CROPS)
        del arrays
    tracks = sum(len(r["tracks"]) for r in records)
    reused = sum(1 for row, keep in zip(old_rows, kept) if row is not None and keep)
    log(f"index {out}: {len(records)} videos, {tracks} tracks, {len(paths)} crops ({reused} reused, "
        f"{len(paths) - reused} encoded), FAISS {settings['kind']}")
    return out
