"""``mia serve``: the JSON API and its refusals through an ASGI client; start-up (a moved
gallery, a busy port) through the command line; the page in a real headless Chromium
(skipped where Chromium or Playwright is absent), with the functions that make the
README's screenshot (docs/make_screenshot.py)."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

starlette = pytest.importorskip("starlette")
from starlette.testclient import TestClient  # noqa: E402

from mia.export.runtime import Retriever  # noqa: E402
from mia.export.searching import Searcher  # noqa: E402
from mia.export.serve import MAX_QUERY_CHARS, OPENAPI, create_app  # noqa: E402
from test_cli_train import one_line_error, run  # noqa: E402

sys.path.insert(0, str(Path(__file__).parents[1] / "docs"))
import make_screenshot as browser  # noqa: E402

sys.path.pop(0)

CHROMIUM = browser.chromium()
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium (Debian package chromium)")
QUERY = "a man in a black coat and blue jeans"
ACCESS_LINE = re.compile(r"^GET /\S* \d{3} \d+\.\d ms$")


def copy_crops(tiny_synth, folder: Path, count: int | None = None) -> Path:
    folder.mkdir(parents=True)
    for path in sorted((tiny_synth / "imgs" / "test").glob("*.jpg"))[:count]:
        shutil.copy(path, folder / path.name)
    return folder


@pytest.fixture(scope="module")
def searcher(tiny_model, tiny_synth, tmp_path_factory) -> Searcher:
    _, export = tiny_model
    gallery = copy_crops(tiny_synth, tmp_path_factory.mktemp("serve") / "gallery")
    (gallery / "odd <b>&name.jpg").write_bytes((gallery / "19_0.jpg").read_bytes())
    return Searcher(Retriever(export, device="cpu"), gallery=gallery, cache_dir=tmp_path_factory.mktemp("cache"),
                    log=lambda m: None, show_progress=False)


@pytest.fixture(scope="module")
def app(searcher):
    return create_app(searcher, "tiny test model", log=lambda m: None)


@pytest.fixture
def indexed(tiny_model, tiny_synth, tmp_path) -> Path:
    """A run as `make demo` leaves it: RUN/exported (the tiny model) and RUN/index over RUN/gallery."""
    run_dir = tmp_path / "run"
    copy_crops(tiny_synth, run_dir / "gallery")
    (run_dir / "exported").symlink_to(tiny_model[1])
    built = run("index", "build", "--model", run_dir / "exported", "--gallery", run_dir / "gallery",
                "--out", run_dir / "index", "--workers", 0)
    assert built.exit_code == 0, built.output
    return run_dir


def test_api_ranks_the_gallery(app):
    client = TestClient(app)
    answer = client.get("/api/search", params={"q": QUERY, "k": 5}).json()
    assert [r["rank"] for r in answer["results"]] == [1, 2, 3, 4, 5] and answer["gallery"] == 19
    scores = [r["score"] for r in answer["results"]]
    assert scores == sorted(scores, reverse=True)
    more = client.get("/api/search", params={"q": QUERY, "k": 5, "offset": 5}).json()
    assert [r["rank"] for r in more["results"]] == [6, 7, 8, 9, 10]
    everything = client.get("/api/search", params={"q": QUERY, "k": 10}).json()
    assert [r["id"] for r in everything["results"]] == [r["id"] for r in answer["results"] + more["results"]]
    first = answer["results"][0]
    thumb = client.get(first["thumb"])
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    assert thumb.content[:2] == b"\xff\xd8"
    image = client.get(first["image"])
    assert image.content[:2] == b"\xff\xd8" and image.headers["content-type"] == "image/jpeg"
    assert client.get("/healthz").json() == {"status": "ok", "gallery": 19, "provider": "CPUExecutionProvider"}


def test_match_is_the_score_as_a_share_of_the_best_one(app):
    results = TestClient(app).get("/api/search", params={"q": QUERY, "k": 19}).json()["results"]
    best = results[0]["score"]
    assert best > 0 and results[0]["match"] == 100
    assert [r["match"] for r in results] == [round(100 * max(r["score"], 0) / best) for r in results]
    later = TestClient(app).get("/api/search", params={"q": QUERY, "k": 5, "offset": 10}).json()["results"]
    assert [r["match"] for r in later] == [r["match"] for r in results[10:15]]  # still relative to rank 1


@pytest.mark.parametrize("path, status, fragment", [
    ("/api/search?q=a+man&k=0", 400, "k: expected an integer from 1 to 100, got 0"),
    ("/api/search?q=a+man&k=1000000000", 400, "k: expected an integer from 1 to 100"),
    ("/api/search?q=a+man&k=ten", 400, "k: expected an integer"),
    ("/api/search?q=a+man&offset=-1", 400, "offset: expected an integer from 0"),
    ("/api/search?q=a+man&k=100&offset=950", 400, "offset + k: at most 1000"),
    ("/api/search?q=", 400, "q: describe the person"),
    ("/api/search", 400, "q: describe the person"),
    ("/images/99999", 404, "no gallery entry 99999"),
    ("/thumbs/99999", 404, "no gallery entry 99999"),
    ("/thumbs/-1", 404, ""),
    ("/images/../../../../etc/passwd", 404, ""),
    ("/images/..%2f..%2fetc%2fpasswd", 404, ""),
    ("/images/%2e%2e/secret", 404, ""),
])
def test_api_refuses_bad_requests(app, path, status, fragment):
    response = TestClient(app).get(path)
    assert response.status_code == status
    if fragment:
        assert fragment in response.json()["error"]


def test_a_long_query_is_refused_by_the_app(app):
    response = TestClient(app).get("/api/search", params={"q": "red " * 2_500})
    assert response.status_code == 413 and f"at most {MAX_QUERY_CHARS} characters" in response.json()["error"]


def test_a_100_kb_query_is_refused_by_the_server(server):
    """Too long for any URL: the HTTP server answers 4xx before the app sees it."""
    host, port = server.removeprefix("http://").rstrip("/").split(":")
    with socket.create_connection((host, int(port))) as connection:
        connection.sendall(b"GET /api/search?q=" + b"red+" * 25_000 + b" HTTP/1.1\r\nHost: localhost\r\n\r\n")
        status = connection.recv(200).split(b"\r\n")[0]
    assert status.startswith(b"HTTP/1.1 4"), status


def test_the_page_names_the_model_and_escapes_what_it_shows(searcher):
    client = TestClient(create_app(searcher, "tiny <script>alert(1)</script> model", log=lambda m: None))
    page = client.get("/").text
    assert "<script>alert(1)</script>" not in page and "tiny &lt;script&gt;alert(1)&lt;/script&gt; model" in page
    assert "innerHTML" not in page  # results are built with textContent only
    header = re.sub(r"<[^>]+>", "", page[page.index("<header>"):page.index("</header>")])
    for fact in ("trained on ", "image encoder ", "text encoder ", "exported ", "searching 19 images"):
        assert fact in header, fact
    assert "trained from" in header  # where each encoder's training started
    details = page[page.index("<details"):page.index("</details>")]
    assert "<li>global × 1.0</li><li>fine × 1.0</li>" in details
    assert "{{" not in page
    odd = client.get("/api/search", params={"q": "a man", "k": 19}).json()["results"]
    assert "odd <b>&name.jpg" in [r["path"] for r in odd]  # JSON carries the name; the page shows it as text


def test_the_model_card_shows_what_the_manifest_has_and_says_what_it_lacks(searcher):
    from mia.export.manifest import model_card

    manifest = searcher.retriever.manifest
    card = model_card({**manifest, "exported": "2026-12-06T09:30:00+00:00"})
    assert card["exported"] == "2026-12-06" and card["alignments"] == {"global": 1.0, "fine": 1.0}
    assert card["image encoder"] == f"{manifest['image_encoder']} (trained from scratch)"
    assert model_card({"alignments": ["global"], "image": {}, "text": {}}) == {
        "trained on": "unknown", "image encoder": "unknown", "text encoder": "unknown", "exported": "unknown",
        "alignments": {"global": 1.0}}


def test_every_route_is_described(app):
    client = TestClient(app)
    routes = {route.path_format for route in app.routes}
    assert routes == set(OPENAPI["paths"]) == set(client.get("/openapi.json").json()["paths"])
    assert client.get("/openapi.json").json()["openapi"].startswith("3.")
    human = client.get("/api").text
    for path in routes:
        assert f"GET {path}</code>" in human.replace("&#x27;", "'")
    assert 'href="/api"' in client.get("/").text


def test_the_access_log_is_one_line_per_request(searcher):
    lines = []
    client = TestClient(create_app(searcher, "tiny", log=lines.append))
    client.get("/api/search", params={"q": "a man", "k": 3})
    client.get("/images/99999")
    assert [re.sub(r" \d+\.\d ms$", " MS", line) for line in lines] == [
        "GET /api/search?q=a+man&k=3 200 MS", "GET /images/99999 404 MS"]
    assert all(ACCESS_LINE.match(line) for line in lines)
    quiet = []
    TestClient(create_app(searcher, "tiny", log=quiet.append, access_log=False)).get("/healthz")
    assert quiet == []


def test_a_file_gone_at_request_time_is_a_404_and_one_log_line(tiny_model, tiny_synth, tmp_path):
    gallery = copy_crops(tiny_synth, tmp_path / "gallery", count=3)
    lines = []
    searcher = Searcher(Retriever(tiny_model[1], device="cpu"), gallery=gallery, cache_dir=tmp_path / "cache",
                        log=lambda m: None, show_progress=False)
    client = TestClient(create_app(searcher, "tiny", log=lines.append, access_log=False))
    assert client.get("/thumbs/0").status_code == 200  # cached from now on: the cache must not hide the removal
    searcher.paths[0].unlink()
    for route in ("/images/0", "/thumbs/0"):
        lines.clear()
        response = client.get(route)
        assert response.status_code == 404, route
        assert response.json() == {"error": f"gallery entry 0 ({searcher.paths[0].name}) cannot be read: "
                                            "No such file or directory"}
        assert lines == [f"{route}: gallery entry 0 ({searcher.paths[0].name}) cannot be read: "
                         "No such file or directory"]
    searcher.paths[1].write_bytes(b"not an image")
    lines.clear()
    assert client.get("/thumbs/1").status_code == 404 and len(lines) == 1 and "UnidentifiedImageError" in lines[0]


def test_a_moved_gallery_is_one_line_at_start(indexed, tmp_path):
    moved = indexed.parent / "moved"
    (indexed / "gallery").rename(moved)
    gallery = indexed / "gallery"
    args = ["--model", indexed / "exported", "--index", indexed / "index"]
    for command in (["search", QUERY, *args], ["serve", *args, "--port", 0]):
        result = run(*command)
        one_line_error(result, f"its gallery {gallery} moved or is gone", "18 of 18 sampled images are missing",
                       f"e.g. {gallery / '19_0.jpg'}", "--gallery-root", "mia index build")
        assert "serving" not in result.output
    found = run("search", QUERY, *args, "--gallery-root", moved, "--json")
    assert found.exit_code == 0, found.output
    assert all(Path(r["path"]).parent == moved for r in json.loads(found.stdout)["results"])
    one_line_error(run("search", QUERY, *args, "--gallery-root", tmp_path), f"--gallery-root {tmp_path}: ",
                   "18 of 18 sampled images are missing", f"holds what {gallery} held")
    one_line_error(run("search", QUERY, *args, "--gallery-root", tmp_path / "nowhere"),
                   f"--gallery-root {tmp_path / 'nowhere'}: no such directory")
    one_line_error(run("search", QUERY, "--model", indexed / "exported", "--gallery", moved, "--gallery-root", moved),
                   "--gallery-root", "use it with --index")


def test_a_re_pointed_index_serves_its_images(indexed):
    moved = indexed.parent / "moved"
    (indexed / "gallery").rename(moved)
    searcher = Searcher(Retriever(indexed / "exported", device="cpu"), index=indexed / "index", gallery_root=moved)
    client = TestClient(create_app(searcher, "tiny", log=lambda m: None))
    first = client.get("/api/search", params={"q": QUERY, "k": 1}).json()["results"][0]
    assert (moved / first["path"]).is_file()
    assert client.get(first["image"]).content == (moved / first["path"]).read_bytes()


def test_a_few_missing_files_are_a_warning(indexed):
    (indexed / "gallery" / "19_0.jpg").unlink()
    result = run("search", QUERY, "--model", indexed / "exported", "--index", indexed / "index")
    assert result.exit_code == 0, result.output
    assert (f"warning: index {indexed / 'index'}: 1 of 18 sampled images are missing (e.g. "
            f"{indexed / 'gallery' / '19_0.jpg'}); rebuild it with 'mia index build'") in result.output


def test_a_large_index_is_checked_by_a_sample_spread_over_it(indexed, monkeypatch):
    from mia.export.store import GalleryStore, open_store

    index = open_store(indexed / "index")
    looked = []
    monkeypatch.setattr(Path, "is_file", lambda self: looked.append(self) or True)
    assert index.check_gallery(sample=5) is None
    assert looked == [index.paths[i] for i in (0, 4, 8, 13, 17)]  # first and last, evenly between
    looked.clear()
    index.check_gallery()
    assert len(looked) == len(index) == 18 < GalleryStore.GALLERY_SAMPLE


def test_a_busy_port_is_one_line_and_nothing_is_served(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run("serve", "--model", tmp_path, "--index", tmp_path, "--port", port)
    one_line_error(result, f"--port {port}: address already in use on 127.0.0.1; pick another with --port")
    assert "serving" not in result.output


def test_mia_serve_answers_as_soon_as_it_says_it_serves(indexed):
    """The real command: 'serving' names a URL that answers at once, and each request is logged."""
    import httpx

    process = subprocess.Popen([sys.executable, "-m", "mia.cli", "serve", "--model", str(indexed / "exported"),
                                "--index", str(indexed / "index"), "--port", "0", "--device", "cpu"],
                               stderr=subprocess.PIPE, text=True)
    try:
        lines = iter(process.stderr.readline, "")
        line = next((line for line in lines if line.startswith("serving")), "")
        url = re.fullmatch(r"serving 18 images on (http://127\.0\.0\.1:\d+/) \(Ctrl-C stops\)\n", line)
        assert url, line
        assert httpx.get(url[1] + "healthz").json()["gallery"] == 18
        assert re.fullmatch(r"GET /healthz 200 \d+\.\d ms\n", process.stderr.readline())
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def server(app):
    """The app behind a real uvicorn on a free loopback port; yields its URL."""
    with browser.serving(app) as url:
        yield url


@needs_chromium
def test_the_page_in_a_real_browser(server, tmp_path):
    """A search in the URL runs at once; a new one changes the URL and Back restores the
    first; a result enlarges to at least twice its thumbnail; the match is explained.
    Screenshots land in the test's folder, to look at."""
    pytest.importorskip("playwright.sync_api")
    other = "a woman in a red dress with a white handbag"
    with browser.browser_page(CHROMIUM) as page:
        browser.open_search(page, server, QUERY)
        assert page.inner_text("#status").startswith("Top 19 of 19 images")
        assert page.locator("figure.tile .rank").all_inner_texts()[:3] == ["#1", "#2", "#3"]
        assert page.locator("figure.tile .score").first.inner_text() == "match 100%"
        assert "model score" in page.locator("figure.tile .score").first.get_attribute("title")
        assert page.is_visible("#explain") and "match 100% = the best result of this search" in page.inner_text("#explain")
        assert "odd <b>&name.jpg" in page.locator("figure.tile .name").all_inner_texts()  # text, not markup
        first_names = page.locator("figure.tile .name").all_inner_texts()
        page.screenshot(path=str(tmp_path / "results.png"))

        page.fill("#query", other)
        page.press("#query", "Enter")
        browser.wait_for_results(page, other)
        assert "q=a+woman+in+a+red+dress" in page.url
        assert page.locator("figure.tile .name").all_inner_texts() != first_names
        page.go_back()
        browser.wait_for_results(page, QUERY)
        assert "q=a+man+in+a+black+coat" in page.url and page.input_value("#query") == QUERY
        assert page.locator("figure.tile .name").all_inner_texts() == first_names

        thumbnail, large = browser.enlarge(page, 0)
        assert large["height"] >= 2 * thumbnail["height"] and large["width"] >= 2 * thumbnail["width"], (thumbnail, large)
        assert page.inner_text("#large-name").startswith("#1 · match 100% · ")
        page.screenshot(path=str(tmp_path / "enlarged.png"))
        page.keyboard.press("Escape")
        assert not page.is_visible("#viewer")


@needs_chromium
def test_the_readme_screenshot_is_one_command(indexed, tmp_path):
    """docs/make_screenshot.py on a run as `make demo` leaves it (here the tiny model's)."""
    pytest.importorskip("playwright.sync_api")
    from PIL import Image

    browser.main([str(indexed), "--out", str(tmp_path / "serve.png")])
    with Image.open(tmp_path / "serve.png") as shot:
        assert shot.size == (browser.VIEWPORT["width"], browser.VIEWPORT["height"])
    assert (tmp_path / "serve.png").stat().st_size > 10_000
    assert browser.demo_query() == "a man in an orange coat and black trousers carrying a blue backpack"
