"""``mia serve``: a search page and a JSON API over an exported model (ASGI, Starlette).

Torch-free, like the rest of the runtime.  Routes:

* ``GET /``: the page: type a description, browse ranked thumbnails (score and file
  name), click one to enlarge it, ask for more results;
* ``GET /api/search?q=...&k=10&offset=0``: ranked results as JSON;
* ``GET /images/{id}``, ``GET /thumbs/{id}``: a gallery entry by its number, so only files
  of the gallery can ever be served (no path reaches the file system);
* ``GET /healthz``: whether the model and gallery are loaded.

Queries are bounded (:data:`MAX_QUERY_CHARS`, :data:`MAX_K`, :data:`MAX_RESULTS`); the page
builds its DOM with ``textContent``, so a caption or file name is always shown, never run.
Searches share one lock: tokenizers and ONNX Runtime sessions are used by one request at a time.
"""

from __future__ import annotations

import functools
import io
import threading
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from mia.core.display import displayable
from mia.core.preprocess import load_rgb
from mia.export.searching import Searcher

MAX_QUERY_CHARS = 500
MAX_K = 100
MAX_RESULTS = 1000  # offset + k
THUMB_HEIGHT = 256
PAGE = (Path(__file__).with_name("serve_page.html")).read_text(encoding="utf-8")


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _integer(request: Request, name: str, default: int, low: int, high: int) -> int | JSONResponse:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        return _error(400, f"{name}: expected an integer from {low} to {high}, got {raw[:20]!r}")
    if not low <= value <= high:
        return _error(400, f"{name}: expected an integer from {low} to {high}, got {value}")
    return value


def create_app(searcher: Searcher, title: str) -> Starlette:
    """The ASGI app serving ``searcher`` (a folder or an index behind an exported model)."""
    lock = threading.Lock()
    ids = {path: i for i, path in enumerate(searcher.paths)}
    page = PAGE.replace("{{title}}", _html_text(title))

    def relative(path: Path) -> str:
        try:
            return displayable(path.relative_to(searcher.root).as_posix())
        except ValueError:
            return displayable(path.name)

    async def home(request: Request) -> Response:
        return HTMLResponse(page)

    def search(request: Request) -> Response:
        query = request.query_params.get("q", "")
        if not query.strip():
            return _error(400, "q: describe the person to look for")
        if len(query) > MAX_QUERY_CHARS:
            return _error(413, f"q: at most {MAX_QUERY_CHARS} characters, got {len(query)}")
        k = _integer(request, "k", 10, 1, MAX_K)
        offset = _integer(request, "offset", 0, 0, MAX_RESULTS - 1)
        for value in (k, offset):
            if isinstance(value, Response):
                return value
        if offset + k > MAX_RESULTS:
            return _error(400, f"offset + k: at most {MAX_RESULTS}")
        with lock:
            known, unknown = searcher.retriever.unknown_words(query)
            hits = searcher.search(query, offset + k)[offset:]
        warning = None if known else "the model knows none of these words: the ranking is meaningless"
        results = [{"rank": offset + n + 1, "id": ids[path], "path": relative(path), "score": round(score, 6),
                    "thumb": f"/thumbs/{ids[path]}", "image": f"/images/{ids[path]}"}
                   for n, (path, score) in enumerate(hits)]
        return JSONResponse({"query": query, "offset": offset, "k": k, "gallery": len(searcher),
                             "warning": warning, "unknown_words": unknown, "results": results})

    def image(request: Request) -> Response:
        entry = request.path_params["entry"]
        if not 0 <= entry < len(searcher.paths):
            return _error(404, f"no gallery entry {entry}")
        return FileResponse(searcher.paths[entry])

    def thumb(request: Request) -> Response:
        entry = request.path_params["entry"]
        if not 0 <= entry < len(searcher.paths):
            return _error(404, f"no gallery entry {entry}")
        try:
            return Response(_thumbnail(searcher.paths[entry]), media_type="image/jpeg")
        except Exception:  # PIL raises many types for a broken or vanished file; all mean "unreadable"
            return _error(404, f"gallery entry {entry} cannot be read")

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok", "gallery": len(searcher), "provider": searcher.retriever.providers[0]})

    return Starlette(routes=[
        Route("/", home), Route("/api/search", search), Route("/healthz", healthz),
        Route("/images/{entry:int}", image), Route("/thumbs/{entry:int}", thumb),
    ])


def _html_text(text: str) -> str:
    from html import escape

    return escape(displayable(text))


@functools.lru_cache(maxsize=4096)
def _thumbnail(path: Path) -> bytes:
    image = load_rgb(path)
    image.thumbnail((THUMB_HEIGHT, THUMB_HEIGHT))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()
