"""Footage into an index, stage by stage, for each detector: decoding (frames of video per
second), detection (sampled frames per second), encoding the kept crops (crops per
second), the whole ``mia index build --video`` (seconds, and video seconds per wall
second), and the index's size per hour of footage at the default sampling.  Then the
end-to-end check on the real clip: a description of a person seen in it, the spans in
which that person is in view (written by watching the clip), and the span the search
returns first.

    python benchmarks/bench_video.py                       # Debian's opencv-doc street clip, the demo's model
    python benchmarks/bench_video.py --video FILE --model EXPORT --detectors motion,hog

``ssdlite:random`` times torchvision's SSDlite with untrained weights (its COCO weights
cannot be had offline here): its speed is real, its detections are not, so its check and
index size are left out.  No model is trained or tuned on the clip.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from _common import report

CLIP = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")
# The check, written by watching the clip (795 frames at 10 frames per second): the woman in
# the red jacket and blue jeans enters at the right edge at about 41 s and walks away along
# the far path out of view at the left by 57 s; she comes back from the left at about 61 s
# and crosses to the upper right, in view until the clip ends.
QUERY = "a woman in a red jacket and blue jeans"
EXPECTED = [(41.0, 57.0), (61.0, 79.5)]
SLACK = 1.0  # seconds: a sampled track starts and ends on a sample, up to 1 / fps away
SHOWN = 10  # results looked through for the first passage of hers


def within(span: tuple[float, float]) -> bool:
    return any(start - SLACK <= span[0] and span[1] <= end + SLACK for start, end in EXPECTED)


def size_of(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def measure(retriever, video: Path, detector_spec: str, rate: float, workdir: Path) -> dict:
    from mia.export.footage import open_footage
    from mia.export.moments import MomentIndex
    from mia.export.store import _encode, open_store
    from mia.export.video_index import build_video_index, create_detector

    footage = open_footage(video)
    started = time.perf_counter()
    frames = [frame for _, _, frame in footage.sampled(rate)]
    decode = time.perf_counter() - started
    detector = create_detector(detector_spec, "cpu")
    if hasattr(detector, "new_video"):
        detector.new_video()
    started = time.perf_counter()
    for frame in frames:
        detector.detect(frame)
    detect = time.perf_counter() - started
    timed = {"sampled": len(frames), "decode_fps": footage.frames / decode, "detect_fps": len(frames) / detect}
    if detector_spec.endswith(":random"):  # untrained: nothing found, nothing to index
        return timed
    out = workdir / detector_spec.replace(":", "-")
    started = time.perf_counter()
    build_video_index(retriever, video, out, detector_spec, rate, log=lambda m: None, show_progress=False)
    total = time.perf_counter() - started
    store = open_store(out, retriever)
    started = time.perf_counter()
    for _ in _encode(retriever, store.paths, 0, 64, False, lambda m: None, "bench"):
        pass
    encode = time.perf_counter() - started
    moments = MomentIndex(store)
    ranked = moments.search(retriever, QUERY, SHOWN, None)
    return {**timed, "crops": len(store), "encode_per_s": len(store) / encode, "total_s": total,
            "realtime": footage.duration / total, "tracks": len(moments.spans),
            "mb_per_hour": size_of(out) / 2**20 * 3600 / footage.duration, "ranked": ranked}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--video", default=str(CLIP), help="the footage (default: Debian opencv-doc's vtest.avi)")
    parser.add_argument("--model", default="runs/demo/exported", help="an exported model (default: the demo's)")
    parser.add_argument("--detectors", default="motion,hog,hog:1.5,ssdlite:random")
    parser.add_argument("--fps", type=float, default=2.0, help="frames sampled per second (mia's default: 2)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    for needed, hint in ((Path(args.video), "apt-get install opencv-doc"), (Path(args.model), "make demo")):
        if not needed.exists():
            sys.exit(f"{needed}: not found ({hint})")
    from mia.export.footage import open_footage
    from mia.export.runtime import Retriever

    retriever = Retriever(args.model, device="cpu")
    footage = open_footage(Path(args.video))
    rows, checks = [], {}
    workdir = Path(tempfile.mkdtemp(prefix="bench-video-"))
    try:
        for spec in args.detectors.split(","):
            found = measure(retriever, Path(args.video), spec, args.fps, workdir)
            row = [spec, found["sampled"], round(found["decode_fps"], 1), round(found["detect_fps"], 2)]
            if "ranked" not in found:
                rows.append(row + ["-"] * 6)
            else:
                rows.append(row + [found["crops"], round(found["encode_per_s"], 1), round(found["total_s"], 1),
                                   round(found["realtime"], 2), found["tracks"], round(found["mb_per_hour"], 1)])
                ranked = found["ranked"]
                hers = [rank for rank, m in enumerate(ranked, start=1) if within((m.start, m.end))]
                checks[spec] = {"returned_first": [ranked[0].start, ranked[0].end],
                                "first_is_hers": bool(hers) and hers[0] == 1,
                                "rank_of_her_first_passage": hers[0] if hers else f"not in the top {SHOWN}"}
            print(f"{spec}: done", file=sys.stderr)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report("bench_video", None,
           ["detector", "sampled frames", "decode (video frames/s)", "detect (sampled frames/s)", "crops",
            "encode (crops/s)", "index build (s)", "x real time", "tracks", "index MB per hour"],
           rows,
           {"video": f"{Path(args.video).name}: {footage.frames} frames at {footage.fps:g} fps, "
                     f"{footage.width}x{footage.height}, {footage.duration:.1f} s",
            "sampling": f"{args.fps:g} frames per second; 4 crops per track", "model": args.model,
            "check": {"query": QUERY, "expected": [list(span) for span in EXPECTED], "slack_s": SLACK,
                      "top_result": checks}},
           args.out)


if __name__ == "__main__":
    main()
