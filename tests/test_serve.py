"""``mia serve``: the JSON API and its refusals through an ASGI client, and the page in a real
headless Chromium (skipped where Chromium or Playwright is absent)."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

starlette = pytest.importorskip("starlette")
from starlette.testclient import TestClient  # noqa: E402

from mia.export.runtime import Retriever  # noqa: E402
from mia.export.searching import Searcher  # noqa: E402
from mia.export.serve import MAX_QUERY_CHARS, create_app  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def searcher(tiny_model, tiny_synth, tmp_path_factory) -> Searcher:
    _, export = tiny_model
    gallery = tmp_path_factory.mktemp("serve-gallery")
    for path in sorted((tiny_synth / "imgs" / "test").glob("*.jpg")):
        shutil.copy(path, gallery / path.name)
    (gallery / "odd <b>&name.jpg").write_bytes((gallery / "19_0.jpg").read_bytes())
    return Searcher(Retriever(export, device="cpu"), gallery=gallery, cache_dir=tmp_path_factory.mktemp("cache"),
                    log=lambda m: None, show_progress=False)


@pytest.fixture(scope="module")
def app(searcher):
    return create_app(searcher, "tiny test model (global+fine), 19 synthpedes test crops")


def test_api_ranks_the_gallery(app):
    client = TestClient(app)
    answer = client.get("/api/search", params={"q": "a man in a black coat and blue jeans", "k": 5}).json()
    assert [r["rank"] for r in answer["results"]] == [1, 2, 3, 4, 5] and answer["gallery"] == 19
    scores = [r["score"] for r in answer["results"]]
    assert scores == sorted(scores, reverse=True)
    more = client.get("/api/search", params={"q": "a man in a black coat and blue jeans", "k": 5, "offset": 5}).json()
    assert [r["rank"] for r in more["results"]] == [6, 7, 8, 9, 10]
    everything = client.get("/api/search", params={"q": "a man in a black coat and blue jeans", "k": 10}).json()
    assert [r["id"] for r in everything["results"]] == [r["id"] for r in answer["results"] + more["results"]]
    first = answer["results"][0]
    thumb = client.get(first["thumb"])
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    assert thumb.content[:2] == b"\xff\xd8"
    assert client.get(first["image"]).content[:2] == b"\xff\xd8"
    assert client.get("/healthz").json() == {"status": "ok", "gallery": 19, "provider": "CPUExecutionProvider"}


@pytest.mark.parametrize("path, status, fragment", [
    ("/api/search?q=a+man&k=0", 400, "k: expected an integer from 1 to 100, got 0"),
    ("/api/search?q=a+man&k=1000000000", 400, "k: expected an integer from 1 to 100"),
    ("/api/search?q=a+man&k=ten", 400, "k: expected an integer"),
    ("/api/search?q=a+man&offset=-1", 400, "offset: expected an integer from 0"),
    ("/api/search?q=a+man&k=100&offset=950", 400, "offset + k: at most 1000"),
    ("/api/search?q=", 400, "q: describe the person"),
    ("/api/search", 400, "q: describe the person"),
    ("/images/99999", 404, "no gallery entry 99999"),
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
    with socket.create_connection(("127.0.0.1", server)) as connection:
        connection.sendall(b"GET /api/search?q=" + b"red+" * 25_000 + b" HTTP/1.1\r\nHost: localhost\r\n\r\n")
        status = connection.recv(200).split(b"\r\n")[0]
    assert status.startswith(b"HTTP/1.1 4"), status


def test_the_page_escapes_what_it_shows(searcher):
    client = TestClient(create_app(searcher, "tiny <script>alert(1)</script> model"))
    page = client.get("/").text
    assert "<script>alert(1)</script>" not in page and "tiny &lt;script&gt;alert(1)&lt;/script&gt; model" in page
    assert "innerHTML" not in page  # results are built with textContent only
    odd = client.get("/api/search", params={"q": "a man", "k": 19}).json()["results"]
    assert "odd <b>&name.jpg" in [r["path"] for r in odd]  # JSON carries the name; the page shows it as text


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server(app):
    """The app behind a real uvicorn on a free loopback port; yields the port."""
    import uvicorn

    port = free_port()
    running = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical"))
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not running.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    yield port
    running.should_exit = True
    thread.join(timeout=10)


@pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium (Debian package chromium)")
def test_the_page_in_a_real_browser(server, tmp_path):
    """Type a description, see ranked thumbnails, enlarge one; a screenshot is written to
    $MIA_SERVE_SCREENSHOT (the README's) or the test's folder."""
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"])
        page = browser.new_page(viewport={"width": 1100, "height": 820})
        page.goto(f"http://127.0.0.1:{server}/")
        page.fill("#query", "a man in a black coat and blue jeans")
        page.press("#query", "Enter")
        page.wait_for_selector("figure.tile img", timeout=30_000)
        page.wait_for_function("document.querySelectorAll('figure.tile').length == 19")
        page.wait_for_function("[...document.querySelectorAll('figure.tile img')].every(i => i.complete)")
        assert page.inner_text("#status").startswith("Top 19 of 19 images")
        assert page.locator("figure.tile .rank").all_inner_texts()[:3] == ["#1", "#2", "#3"]
        assert "odd <b>&name.jpg" in page.locator("figure.tile .name").all_inner_texts()  # text, not markup
        screenshot = Path(os.environ.get("MIA_SERVE_SCREENSHOT", tmp_path / "serve.png"))
        page.screenshot(path=str(screenshot))
        page.locator("figure.tile").first.click()
        page.wait_for_selector("#viewer img", state="visible")
        assert page.inner_text("#large-name").startswith("#1")
        page.keyboard.press("Escape")
        assert not page.is_visible("#viewer")
        browser.close()
    assert screenshot.stat().st_size > 10_000
