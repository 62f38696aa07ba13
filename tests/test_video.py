"""Footage into the index: ``mia index build --video`` on a generated street video (tiny
synthpedes people walking across a still background, one after another), tracks that
match the people, a search that returns the right passage first, incremental rebuilds,
bad input as one line, the served page with frames and boxes, and the detectors."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")
from conftest import write_image  # noqa: E402
from test_cli_train import one_line_error, run  # noqa: E402
from test_search import captions_of  # noqa: E402
from videos import FPS, Walker, write_video  # noqa: E402

sys.path.insert(0, str(Path(__file__).parents[1] / "docs"))

from mia.export.tracking import IouTracker, iou  # noqa: E402

# fitted train identities with clothes unlike each other's: bald man in a black coat,
# red shirt and pink skirt, green dress
PEOPLE = (1, 4, 10)
SECONDS = 14.0
SAMPLED_FPS = 5


def walkers(tiny_synth) -> list[Walker]:
    crops = [tiny_synth / "imgs" / "train" / f"{person}_0.jpg" for person in PEOPLE]
    # a second and a half apart: one leaving and the next arriving at the same edge are not one passage
    return [Walker(crops[0], 1.0, 4.0), Walker(crops[1], 5.5, 8.5, leftwards=True), Walker(crops[2], 10.0, 13.0)]


@pytest.fixture(scope="module")
def street(tiny_synth, tmp_path_factory) -> tuple[Path, list[dict]]:
    """The generated video and each person's true span and boxes."""
    folder = tmp_path_factory.mktemp("footage")
    return folder / "street.avi", write_video(folder / "street.avi", walkers(tiny_synth), SECONDS)


def build(model_dir, video, out, *extra):
    return run("index", "build", "--model", model_dir, "--video", video, "--out", out, "--fps", SAMPLED_FPS,
               "--device", "cpu", *extra)


@pytest.fixture(scope="module")
def video_index(model_dir, street, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("video-index") / "index"
    built = build(model_dir, street[0], out)
    assert built.exit_code == 0, built.output
    return out


def overlaps(span: tuple[float, float], truth: dict) -> float:
    """Seconds that a found span shares with a person's true one."""
    return max(0.0, min(span[1], truth["end"]) - max(span[0], truth["start"]))


def one_error(result, *fragments):
    """After the progress of what it decoded, the command ends with one line saying why it failed."""
    assert result.exit_code != 0 and "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and result.output.rstrip().endswith(errors[0]), result.output
    assert all(fragment in errors[0] for fragment in fragments), errors[0]


def test_every_person_is_one_track_with_their_span_and_boxes(video_index, street):
    _, truth = street
    videos = json.loads((video_index / "videos.json").read_text())
    tracks = videos[0]["tracks"]
    assert len(videos) == 1 and len(tracks) == len(PEOPLE), tracks
    moments = json.loads((video_index / "moments.json").read_text())
    for person, seen in zip(PEOPLE, truth):
        track = max(tracks, key=lambda t: overlaps((t["start"], t["end"]), seen))
        assert abs(track["start"] - seen["start"]) <= 1.0 and abs(track["end"] - seen["end"]) <= 0.5, (person, track, seen)
        crops = [m for m in moments if m["track"] == track["id"]]
        assert 1 <= len(crops) <= 4
        for moment in crops:  # each crop's box is where the person was in that frame
            true_box = np.array([seen["boxes"][moment["frame"]]], np.float32)
            assert iou(np.array([moment["box"]], np.float32), true_box)[0, 0] > 0.5, (moment, true_box)
            assert (video_index / "crops" / moment["crop"]).is_file()
            assert (video_index / moment["frame_image"]).is_file()


def test_a_description_finds_its_person_passage_first(model_dir, video_index, street, tiny_synth):
    _, truth = street
    for person, seen in zip(PEOPLE, truth):
        for caption in captions_of(tiny_synth, person):
            result = run("search", caption, "--model", model_dir, "--index", video_index, "--device", "cpu", "--json")
            assert result.exit_code == 0, result.output
            answer = json.loads(result.stdout)
            first = answer["results"][0]
            assert overlaps((first["start"], first["end"]), seen) > 2.0, (caption, first, seen)
            assert len({(r["video"], r["track"]) for r in answer["results"]}) == len(answer["results"]) == len(PEOPLE)
            assert Path(first["video"]).name == "street.avi" and first["span"].count(":") == 2
            assert len(first["box"]) == 4 and first["frame_size"] == [320, 180]
            assert Path(first["crop"]).is_file() and Path(first["frame_image"]).is_file()


def test_the_text_output_and_the_page_show_passages(model_dir, video_index, tiny_synth, tmp_path):
    caption = captions_of(tiny_synth, PEOPLE[1])[0]
    page = tmp_path / "results.html"
    result = run("search", caption, "--model", model_dir, "--index", video_index, "--device", "cpu", "--html", page)
    assert result.exit_code == 0, result.output
    first = result.stdout.splitlines()[0].split()
    assert first[0] == "1" and first[2] == "street.avi" and first[4:6] == ["track", "1"], result.stdout
    html = page.read_text()
    assert html.count('class="moment"') == len(PEOPLE) and html.count('class="box"') == len(PEOPLE)
    assert "00:05" in html and "data:image/jpeg;base64," in html


def test_a_rebuild_reuses_unchanged_videos_and_redoes_changed_settings(model_dir, video_index, street, tmp_path):
    out = tmp_path / "index"
    shutil.copytree(video_index, out)
    again = build(model_dir, street[0], out)
    assert again.exit_code == 0, again.output
    assert "unchanged, 3 tracks reused" in again.output and "(12 reused, 0 encoded)" in again.output.replace(
        str(out), ""), again.output
    other = build(model_dir, street[0], out, "--crops-per-track", 2)
    assert other.exit_code == 0 and "unchanged" not in other.output and "(0 reused, 6 encoded)" in other.output
    assert run("index", "verify", out).exit_code == 0


def test_a_folder_of_videos_is_indexed_video_by_video(model_dir, video_index, street, tmp_path):
    """Two cameras (one in a subfolder, with the same file name) are two videos; adding a
    third without people keeps both and says which one had none; images are for --gallery."""
    folder = tmp_path / "cameras"
    (folder / "north").mkdir(parents=True)
    shutil.copy(street[0], folder / "street.avi")
    shutil.copy(street[0], folder / "north" / "street.avi")
    out = folder / "index"  # inside the folder it indexes: its crops are not the folder's images
    built = build(model_dir, folder, out)
    assert built.exit_code == 0 and "2 videos, 6 tracks, 24 crops" in built.output, built.output
    write_video(folder / "night.avi", [], 3.0)
    again = build(model_dir, folder, out)
    assert again.exit_code == 0 and "3 videos, 6 tracks, 24 crops (24 reused, 0 encoded)" in again.output
    assert "no people found in 1 video(s) by --detector motion at --fps 5: night.avi" in again.output
    videos = json.loads((out / "videos.json").read_text())
    assert len({v["key"] for v in videos}) == 3
    shutil.rmtree(out)
    one_line_error(run("search", "a man", "--model", model_dir, "--gallery", folder), "no .jpg", "--video")


def test_bad_footage_is_one_line_and_loses_nothing(model_dir, video_index, street, tmp_path):
    out = tmp_path / "index"
    shutil.copytree(video_index, out)
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    not_video = tmp_path / "notes.mp4"
    not_video.write_text("not a video")
    one_line_error(build(model_dir, not_video, out), "notes.mp4", "not a video")
    empty = tmp_path / "empty.avi"
    write_video(empty, [], 3.0)
    one_error(build(model_dir, empty, out), "empty.avi", "no people found", "--detector motion")
    one_line_error(build(model_dir, street[0], out, "--fps", 2 * FPS), "--fps 20", "street.avi", "at most 10")
    one_line_error(build(model_dir, street[0], out, "--fps", 0), "--fps")
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    shutil.copy(street[0], mixed / "cam1.avi")
    write_image(mixed / "crop.jpg")
    one_line_error(build(model_dir, mixed, out), "--video", "1 video(s) and 1 image(s)", "--gallery")
    one_line_error(run("index", "build", "--model", model_dir, "--gallery", mixed, "--video", street[0], "--out", out),
                   "exactly one of --gallery", "--video")
    one_line_error(run("search", "a man", "--model", model_dir, "--index", out, "--gallery-root", mixed),
                   "--gallery-root", "is of footage")
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before
    assert run("index", "verify", out).exit_code == 0


def test_a_truncated_video_keeps_what_it_decoded_and_says_where_it_stopped(model_dir, street, tmp_path):
    cut = tmp_path / "cut.avi"
    data = street[0].read_bytes()
    cut.write_bytes(data[:int(len(data) * 0.8)])
    built = build(model_dir, cut, tmp_path / "index")
    assert built.exit_code == 0, built.output
    stopped = [line for line in built.output.splitlines() if "is truncated" in line]
    assert len(stopped) == 1 and "decoding stopped at frame" in stopped[0] and "of 140" in stopped[0], built.output
    videos = json.loads((tmp_path / "index" / "videos.json").read_text())
    assert 0 < videos[0]["stopped_at"] < 140 and len(videos[0]["tracks"]) >= 2


def test_the_tracker_follows_two_people_and_drops_a_one_frame_false_alarm():
    tracker = IouTracker()
    for step in range(6):
        people = [[10 + 8 * step, 20, 40 + 8 * step, 100, 1.0], [200 - 8 * step, 30, 230 - 8 * step, 110, 1.0]]
        if step == 2:
            people.append([120, 0, 130, 20, 0.4])  # seen once: not a person
        tracker.update(step * 5, step * 0.5, np.array(people, np.float32))
    tracks = tracker.pop_ended(final=True)
    assert len(tracks) == 2 and [len(t.frames) for t in tracks] == [6, 6]
    assert tracks[0].boxes[-1][0] == 50 and tracks[1].boxes[-1][0] == 160


def test_serving_a_video_index_returns_passages_and_frames(model_dir, video_index, tiny_synth):
    pytest.importorskip("starlette")
    from starlette.testclient import TestClient

    from mia.export.runtime import Retriever
    from mia.export.searching import Searcher
    from mia.export.serve import create_app

    searcher = Searcher(Retriever(model_dir, device="cpu"), index=video_index, log=lambda m: None)
    client = TestClient(create_app(searcher, "tiny", log=lambda m: None, access_log=False))
    assert "searching 3 passages of people in 1 video" in client.get("/").text
    answer = client.get("/api/search", params={"q": captions_of(tiny_synth, PEOPLE[2])[0], "k": 10}).json()
    assert answer["unit"] == "passages" and answer["gallery"] == 3 and len(answer["results"]) == 3
    first = answer["results"][0]
    assert first["video"] == "street.avi" and first["start"] >= 9.5 and first["frame_image"] == f"/frames/{first['id']}"
    frame = client.get(first["frame_image"])
    assert frame.status_code == 200 and frame.headers["content-type"] == "image/jpeg"
    assert client.get("/frames/99999").status_code == 404


def test_the_served_page_shows_frames_with_boxes_and_time_spans(model_dir, video_index, tiny_synth, tmp_path):
    """In a real browser: each result is the frame with the person's box drawn where the
    person is, the crop, and the time span (screenshot in the test's folder, to look at)."""
    pytest.importorskip("playwright.sync_api")
    pytest.importorskip("starlette")
    import make_screenshot as browser

    if browser.chromium() is None:
        pytest.skip("needs Chromium (Debian package chromium)")
    from mia.export.runtime import Retriever
    from mia.export.searching import Searcher
    from mia.export.serve import create_app

    searcher = Searcher(Retriever(model_dir, device="cpu"), index=video_index, log=lambda m: None)
    app = create_app(searcher, "tiny", log=lambda m: None, access_log=False)
    query = captions_of(tiny_synth, PEOPLE[0])[0]
    with browser.serving(app) as url, browser.browser_page(browser.chromium()) as page:
        browser.open_search(page, url, query)
        assert page.inner_text("#status").startswith("Top 3 of 3 passages")
        assert page.locator("figure.moment").count() == 3 and page.locator("figure.moment .box").count() == 3
        assert page.locator("figure.moment .span").first.inner_text().endswith("in street.avi")
        assert "00:01" in page.locator("figure.moment .span").first.inner_text()
        scene = page.locator("figure.moment .scene img").first.bounding_box()
        box = page.locator("figure.moment .box").first.bounding_box()
        inside = (scene["x"] <= box["x"] and box["x"] + box["width"] <= scene["x"] + scene["width"] + 1
                  and scene["y"] <= box["y"] and box["y"] + box["height"] <= scene["y"] + scene["height"] + 1)
        assert inside and box["height"] > 0.3 * scene["height"], (scene, box)  # the person is 40% of the frame
        page.screenshot(path=str(tmp_path / "video-results.png"))


def test_the_detectors_are_plugins_with_one_line_errors(tmp_path, monkeypatch):
    listed = run("list", "detector")
    assert all(name in listed.output for name in ("motion", "hog", "ssdlite", "fasterrcnn")), listed.output
    from mia.core.base.errors import MiaError
    from mia.export.video_index import create_detector

    frame = np.zeros((180, 320, 3), np.uint8)
    assert create_detector("hog").detect(frame).shape == (0, 5)
    assert create_detector("hog:1.5").settings["upscale"] == 1.5
    with pytest.raises(MiaError, match="motion:9: expected the smallest person's height .* from 0.01 to 0.9"):
        create_detector("motion:9")
    with pytest.raises(MiaError, match="hog:big: expected an upscale factor, from 0.5 to 4, e.g. hog:1.5"):
        create_detector("hog:big")
    with pytest.raises(MiaError, match="unknown detector 'yolo'; available: fasterrcnn, hog, motion, ssdlite"):
        create_detector("yolo")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("MIA_OFFLINE", "1")
    with pytest.raises(MiaError, match=r"--detector ssdlite: ssdlite320_mobilenet_v3_large_coco-\w+\.pth is not in"):
        create_detector("ssdlite")
    untrained = create_detector("ssdlite:random")
    assert untrained.detect(frame).shape[1] == 5 and untrained.settings["weights"] == "random"


def test_the_documented_detector_plugin_registers_and_detects(monkeypatch):
    """docs/plugins.md's detector example runs, and registered as a plugin it is a --detector."""
    import re
    import types

    from mia.core.registry.plugins import get_plugin_manager, reset_plugins
    from mia.export.video_index import create_detector

    page = (Path(__file__).parents[1] / "docs" / "plugins.md").read_text()
    source = next(block for block in re.findall(r"```python\n(.*?)```", page, re.S) if "class Doorway" in block)
    module = types.ModuleType("doorway_plugin")
    exec(compile(source, "docs/plugins.md", "exec"), module.__dict__)
    reset_plugins()
    get_plugin_manager().register(module, name="doorway")
    try:
        assert create_detector("doorway:0,0,20,40").settings == {"name": "doorway", "box": (0, 0, 20, 40)}
    finally:
        reset_plugins()


REAL_CUT = Path(__file__).parent / "data" / "vtest-cut.mp4"  # what it shows: tests/data/README.md


def tracks_of(spec: str) -> list:
    from mia.export.footage import open_footage
    from mia.export.video_index import create_detector

    footage, detector, tracker = open_footage(REAL_CUT), create_detector(spec), IouTracker()
    detector.new_video() if hasattr(detector, "new_video") else None
    for index, seconds, frame in footage.sampled(footage.fps):
        tracker.update(index, seconds, detector.detect(frame))
    return tracker.pop_ended(final=True)


def test_on_real_street_footage_hog_finds_the_three_people_and_motion_the_one_walking_in():
    """The real clip's cut (an MPEG-4 file: inter-frame coding, unlike the generated MJPEG):
    HOG on frames enlarged twice finds each of the three people as a track; the background
    model finds the woman who walks in from the right edge, from her first steps."""
    found = tracks_of("hog:2")
    first = [t.boxes[0][:4] for t in found if len(t.frames) >= 5]
    assert any(x2 >= 370 for _, _, x2, _ in first), first  # the woman in red, at the right edge
    assert any(x1 < 200 and y2 > 140 for x1, _, _, y2 in first), first  # the man left of the lamp post
    assert any(200 < x1 < 300 and y2 < 150 for x1, _, _, y2 in first), first  # the man on the far path
    walking_in = [t for t in tracks_of("motion") if t.boxes[0][2] >= 340 and len(t.frames) >= 10]
    assert walking_in and walking_in[0].boxes[-1][0] < walking_in[0].boxes[0][0], walking_in
