"""docs/serve.png: the search page of the demo model, showing the demo query's results.

    python docs/make_screenshot.py runs/demo          # after `make demo`: RUN/exported and RUN/index
    python docs/make_screenshot.py --model runs/demo/exported --index VIDEO_INDEX --query Q --out docs/serve-video.png

The model and its index are served in this process on a free loopback port, and the page
is loaded as ``/?q=<the demo query>`` in headless Chromium, driven by Playwright (the
system's Chromium, e.g. Debian's package ``chromium``: nothing is downloaded).  The demo
query is read from the Makefile, so the picture always shows what `make demo` searches.
The browser test of the page (tests/test_serve.py) drives it with these same functions.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import shutil
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).parents[1]
VIEWPORT = {"width": 1100, "height": 820}
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"]
TIMEOUT_MS = 30_000


def chromium() -> str | None:
    """The system's Chromium, if there is one."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def demo_query() -> str:
    """The description `make demo` searches for (the Makefile's DEMO_QUERY)."""
    found = re.search(r'^DEMO_QUERY := "(.+)"$', (ROOT / "Makefile").read_text(), re.M)
    if found is None:
        sys.exit("Makefile: no DEMO_QUERY := \"...\" line to take the demo query from")
    return found.group(1)


@contextlib.contextmanager
def serving(app):
    """``app`` behind uvicorn, as ``mia serve`` runs it, on a free loopback port in a
    thread of this process; yields the page's URL."""
    from mia.export.serve import bind, listen, uvicorn_server

    sock = bind("127.0.0.1", 0)
    url = listen(sock)
    server = uvicorn_server(app)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the server did not start")
        time.sleep(0.02)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextlib.contextmanager
def browser_page(executable: str):
    """A page of a headless Chromium at :data:`VIEWPORT`."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=VIEWPORT)
            page.set_default_timeout(TIMEOUT_MS)
            yield page
        finally:
            browser.close()


def wait_for_results(page, query: str) -> None:
    """Until the page shows the results of ``query`` with every thumbnail loaded."""
    page.wait_for_function("q => document.getElementById('status').textContent.includes('“' + q + '”')", arg=query)
    page.wait_for_function("[...document.querySelectorAll('figure.tile img')].every(i => i.complete && i.naturalWidth)")


def open_search(page, url: str, query: str) -> None:
    """Load the page for ``query`` (``/?q=...``) and wait for its results."""
    page.goto(f"{url}?{urlencode({'q': query})}")
    wait_for_results(page, query)


def enlarge(page, n: int = 0) -> tuple[dict, dict]:
    """Click result ``n``; the rendered boxes of its thumbnail and of the enlarged image."""
    thumbnail = page.locator("figure.tile img").nth(n).bounding_box()
    page.locator("figure.tile").nth(n).click()
    page.wait_for_function("() => { const i = document.getElementById('large'); "
                           "return i.checkVisibility() && i.complete && i.naturalWidth > 0; }")
    return thumbnail, page.locator("#large").bounding_box()


def screenshot(model: Path, index: Path, out: Path, query: str) -> None:
    """``out``: the page serving the exported ``model`` over ``index``, showing ``query``'s results."""
    from mia.export.runtime import Retriever
    from mia.export.searching import Searcher
    from mia.export.serve import create_app

    executable = chromium()
    if executable is None:
        sys.exit("no Chromium found (install the system package 'chromium')")
    searcher = Searcher(Retriever(model, device="cpu"), index=index, log=lambda m: None)
    app = create_app(searcher, str(model), log=lambda m: None, access_log=False)
    with serving(app) as url, browser_page(executable) as page:
        open_search(page, url, query)
        page.screenshot(path=str(out))
    print(f"wrote {out}")


def main(argv: list[str] | None = None) -> None:
    from mia.core.base.errors import MiaError

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", nargs="?", default="runs/demo", help="a run with exported/ and index/ (default runs/demo)")
    parser.add_argument("--model", help="the exported model (default RUN/exported)")
    parser.add_argument("--index", help="the index served, e.g. one of footage (default RUN/index)")
    parser.add_argument("--out", default=str(ROOT / "docs" / "serve.png"))
    parser.add_argument("--query", default=None, help="the description searched (default: the Makefile's DEMO_QUERY)")
    args = parser.parse_args(argv)
    run = Path(args.run)
    model, index = Path(args.model or run / "exported"), Path(args.index or run / "index")
    for needed in (model, index):
        if not needed.is_dir():
            sys.exit(f"{needed}: no such directory (run 'make demo' first)")
    try:
        screenshot(model, index, Path(args.out), args.query or demo_query())
    except MiaError as exc:
        sys.exit(f"Error: {exc}")


if __name__ == "__main__":
    main()
