"""``mia serve``: a search page and a JSON API over an exported model (ASGI, Starlette).

Torch-free, like the rest of the runtime.  Routes (described for programs by
:data:`OPENAPI`, served as ``/openapi.json``, and for people at ``/api``):

* ``GET /?q=...&k=...``: the page; the search lives in its URL, so a search can be
  bookmarked, reloaded and sent, and the browser's back button returns to the last one;
* ``GET /api/search?q=...&k=10&offset=0``: ranked results as JSON;
* ``GET /images/{id}``, ``GET /thumbs/{id}``: a gallery entry by its number, so only files
  of the gallery can ever be served (no path reaches the file system);
* ``GET /frames/{id}``: over a video index, the frame that entry's crop was cut from (its
  results are people's passages: video, time span, frame and box);
* ``GET /healthz``: whether the model and gallery are loaded.

Queries are bounded (:data:`MAX_QUERY_CHARS`, :data:`MAX_K`, :data:`MAX_RESULTS`); the page
builds its DOM with ``textContent``, so a caption or file name is always shown, never run.
A gallery file that vanished or cannot be read is a 404 with its reason and one log line,
never a 500.  Searches share one lock: tokenizers and ONNX Runtime sessions are used by one
request at a time.
"""

from __future__ import annotations

import errno
import functools
import mimetypes
import socket
import threading
import time
from html import escape
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from mia.core.base.display import displayable
from mia.core.base.errors import MiaError
from mia.core.base.version import VERSION
from mia.export.html import THUMB_HEIGHT, thumbnail_jpeg
from mia.export.manifest import model_card
from mia.export.searching import Searcher

MAX_QUERY_CHARS = 500
MAX_K = 100
MAX_RESULTS = 1000  # offset + k
LOGGED_TARGET_CHARS = 300  # of a request's path and query in the access log
BACKLOG = 2048  # uvicorn's default: connections that wait while every worker is busy
PAGE = (Path(__file__).with_name("serve_page.html")).read_text(encoding="utf-8")

_ERROR = {"description": "why not, in one line", "content": {"application/json": {"schema": {
    "type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}}}}}
_ENTRY = [{"name": "entry", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 0},
           "description": "the entry's number (a search result's id)"}]
_RESULT = {"type": "object", "properties": {
    "rank": {"type": "integer", "description": "1 = the best match"},
    "id": {"type": "integer", "description": "the gallery entry, for /images/{id} and /thumbs/{id}"},
    "path": {"type": "string", "description": "the file, relative to the gallery folder"},
    "score": {"type": "number", "description": "the model's score: the weighted sum of its alignments' similarities"},
    "match": {"type": "integer", "nullable": True, "description": "the score as a percentage of the best result's "
              "score for this query (100 = the best result; null when no score is above zero)"},
    "thumb": {"type": "string"}, "image": {"type": "string"},
    "video": {"type": "string", "description": "(video index) the video the passage is in"},
    "track": {"type": "integer", "description": "(video index) the passage's number within its video"},
    "start": {"type": "number", "description": "(video index) second the person is first seen"},
    "end": {"type": "number", "description": "(video index) second the person is last seen"},
    "span": {"type": "string", "description": "(video index) start-end as mm:ss.s"},
    "frame": {"type": "integer", "description": "(video index) the frame of the best-matching crop"},
    "time": {"type": "number", "description": "(video index) that frame's second"},
    "box": {"type": "array", "items": {"type": "number"}, "description": "(video index) x1, y1, x2, y2 in the frame"},
    "frame_size": {"type": "array", "items": {"type": "integer"}, "description": "(video index) width, height"},
    "frame_image": {"type": "string", "description": "(video index) /frames/{id}"}}}
#: the routes of :func:`create_app`, described for programs (a test checks both list the same paths)
OPENAPI = {
    "openapi": "3.0.3",
    "info": {"title": "mia search", "version": VERSION,
             "description": "Find people in one gallery of images from a description in words."},
    "paths": {
        "/": {"get": {"summary": "The search page; with q (and k) it runs that search", "parameters": [
            {"name": "q", "in": "query", "schema": {"type": "string"}, "description": "a description of the person"},
            {"name": "k", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": MAX_RESULTS,
                                                    "default": 20}, "description": "how many results to show"}],
            "responses": {"200": {"description": "the page", "content": {"text/html": {}}}}}},
        "/api/search": {"get": {"summary": "Gallery entries ranked by how well they match a description", "parameters": [
            {"name": "q", "in": "query", "required": True, "schema": {"type": "string", "maxLength": MAX_QUERY_CHARS},
             "description": "a description of the person, e.g. 'a man in a black coat and blue jeans'"},
            {"name": "k", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": MAX_K, "default": 10},
             "description": "results to return"},
            {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0, "default": 0},
             "description": f"results to skip (offset + k is at most {MAX_RESULTS})"}],
            "responses": {
                "200": {"description": "the results, best first", "content": {"application/json": {"schema": {
                    "type": "object", "properties": {
                        "query": {"type": "string"}, "offset": {"type": "integer"}, "k": {"type": "integer"},
                        "gallery": {"type": "integer", "description": "what a search ranks: images, or passages "
                                    "of people in a video index"},
                        "unit": {"type": "string", "enum": ["images", "passages"]},
                        "warning": {"type": "string", "nullable": True},
                        "unknown_words": {"type": "array", "items": {"type": "string"}},
                        "results": {"type": "array", "items": _RESULT}}}}}},
                "400": _ERROR, "413": _ERROR}}},
        "/images/{entry}": {"get": {"summary": "A gallery image, as stored", "parameters": _ENTRY,
                                    "responses": {"200": {"description": "the file", "content": {"image/*": {}}},
                                                  "404": _ERROR}}},
        "/thumbs/{entry}": {"get": {"summary": f"A gallery image at most {THUMB_HEIGHT} pixels high or wide",
                                    "parameters": _ENTRY,
                                    "responses": {"200": {"description": "JPEG", "content": {"image/jpeg": {}}},
                                                  "404": _ERROR}}},
        "/frames/{entry}": {"get": {"summary": "(video index) the frame a passage's crop was cut from, downscaled",
                                    "parameters": _ENTRY,
                                    "responses": {"200": {"description": "JPEG", "content": {"image/jpeg": {}}},
                                                  "404": _ERROR}}},
        "/healthz": {"get": {"summary": "Whether the model and gallery are loaded", "responses": {"200": {
            "description": "status, gallery size and the ONNX Runtime provider", "content": {"application/json": {}}}}}},
        "/openapi.json": {"get": {"summary": "This description of the API (OpenAPI 3)", "responses": {
            "200": {"description": "OpenAPI 3", "content": {"application/json": {}}}}}},
        "/api": {"get": {"summary": "This description of the API, for people", "responses": {
            "200": {"description": "the page", "content": {"text/html": {}}}}}},
    },
}


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


def create_app(searcher: Searcher, name: str, log=print, access_log: bool = True) -> Starlette:
    """The ASGI app serving ``searcher`` (a folder or an index behind the exported model
    called ``name``); ``log`` takes one line per unreadable file and, with ``access_log``,
    per request."""
    lock = threading.Lock()
    ids = {path: i for i, path in enumerate(searcher.paths)}
    moments = searcher.moments
    ranked = len(moments.spans) if moments else len(searcher)  # what a search can return: passages or images
    videos = len(moments.videos) if moments else 0
    searched = (f"{ranked:,} passages of people in {videos:,} video{'s' if videos != 1 else ''}" if moments
                else f"{len(searcher):,} images")
    page = _page(name, model_card(searcher.retriever.manifest), searched)
    api_page = _api_page()

    def relative(path: Path) -> str:
        try:
            return displayable(path.relative_to(searcher.root).as_posix())
        except ValueError:
            return displayable(path.name)

    async def home(request: Request) -> Response:
        return HTMLResponse(page)

    async def api(request: Request) -> Response:
        return HTMLResponse(api_page)

    async def openapi(request: Request) -> Response:
        return JSONResponse(OPENAPI)

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
            if moments:
                found = searcher.search_moments(query, offset + k)
                hits = [(m.crop, m.score) for m in found]
            else:
                hits = searcher.search(query, offset + k)
        best = hits[0][1] if hits else 0.0
        warning = None if known else "the model knows none of these words: the ranking is meaningless"
        results = [{"rank": offset + n + 1, "id": ids[path], "path": relative(path), "score": round(score, 6),
                    "match": round(100 * max(score, 0.0) / best) if best > 0 else None,
                    "thumb": f"/thumbs/{ids[path]}", "image": f"/images/{ids[path]}"}
                   for n, (path, score) in enumerate(hits[offset:])]
        if moments:
            for result, moment in zip(results, found[offset:]):
                result.update(video=displayable(Path(moment.video).name), track=moment.track, start=moment.start,
                              end=moment.end, span=moment.span, frame=moment.frame, time=moment.time,
                              box=list(moment.box), frame_size=list(moment.frame_size),
                              frame_image=f"/frames/{moment.entry}")
        return JSONResponse({"query": query, "offset": offset, "k": k, "gallery": ranked,
                             "unit": "passages" if moments else "images",
                             "warning": warning, "unknown_words": unknown, "results": results})

    def entry_path(request: Request) -> Path | JSONResponse:
        entry = request.path_params["entry"]
        return searcher.paths[entry] if 0 <= entry < len(searcher.paths) else _error(404, f"no gallery entry {entry}")

    def unreadable(request: Request, path: Path, exc: Exception) -> Response:
        """A file the index lists that is gone or broken now: 404, and one line for whoever runs the server."""
        reason = (exc.strerror if isinstance(exc, OSError) else None) or type(exc).__name__
        message = f"gallery entry {request.path_params['entry']} ({relative(path)}) cannot be read: {reason}"
        log(f"{request.url.path}: {message}")
        return _error(404, message)

    def image(request: Request) -> Response:
        path = entry_path(request)
        if isinstance(path, Response):
            return path
        try:  # read whole (person crops are small): a file that vanishes mid-response cannot make it a 500
            content = path.read_bytes()
        except OSError as exc:
            return unreadable(request, path, exc)
        return Response(content, media_type=mimetypes.guess_type(path.name)[0] or "application/octet-stream")

    def thumb(request: Request) -> Response:
        path = entry_path(request)
        if isinstance(path, Response):
            return path
        try:
            stat = path.stat()
            return Response(_thumbnail(path, stat.st_size, stat.st_mtime_ns), media_type="image/jpeg")
        except Exception as exc:  # PIL raises many types for a broken or vanished file; all mean "unreadable"
            return unreadable(request, path, exc)

    def frame(request: Request) -> Response:
        """The (downscaled) video frame a video index's entry was cut from."""
        path = entry_path(request)
        if isinstance(path, Response):
            return path
        if not moments:
            return _error(404, "this index holds images, not video frames")
        framed = moments.frame_image(request.path_params["entry"])
        try:
            return Response(framed.read_bytes(), media_type="image/jpeg")
        except OSError as exc:
            return unreadable(request, framed, exc)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok", "gallery": len(searcher), "provider": searcher.retriever.providers[0]})

    routes = [Route("/", home), Route("/api/search", search), Route("/healthz", healthz),
              Route("/images/{entry:int}", image), Route("/thumbs/{entry:int}", thumb),
              Route("/frames/{entry:int}", frame),
              Route("/openapi.json", openapi), Route("/api", api)]
    return Starlette(routes=routes, middleware=[Middleware(AccessLog, log=log)] if access_log else [])


class AccessLog:
    """ASGI middleware: one line per request: method, path and query as sent, status, and
    the milliseconds to the last byte (what a reverse proxy's log would show)."""

    def __init__(self, app, log):
        self.app, self.log = app, log

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started, status = time.perf_counter(), 500  # what the server answers if the app raises

        async def sending(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            target = scope.get("raw_path") or scope["path"].encode("utf-8", "surrogateescape")
            if scope.get("query_string"):
                target += b"?" + scope["query_string"]
            # as sent (percent-encoded), so a request cannot start a line of its own in the log
            target = target.decode("ascii", "backslashreplace")
            if len(target) > LOGGED_TARGET_CHARS:
                target = target[:LOGGED_TARGET_CHARS] + "..."
            self.log(f"{scope['method']} {target} {status} {(time.perf_counter() - started) * 1e3:.1f} ms")


def bind(host: str, port: int) -> socket.socket:
    """A socket bound to ``host``:``port``, taken before anything is loaded: a busy port is
    one line at once, and 'serving' is only ever said of an address that is ours.
    SO_REUSEADDR as uvicorn sets it: a restart may take over a port whose last server just
    stopped (a port someone listens on stays refused, here or by :func:`listen`)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise _cannot_listen(host, port, exc) from None
    return sock


def listen(sock: socket.socket) -> str:
    """Accept connections on a socket from :func:`bind` (they queue until uvicorn runs);
    its URL, with the port the system picked for port 0."""
    host, port = sock.getsockname()[:2]
    try:
        sock.listen(BACKLOG)
    except OSError as exc:  # another server bound the same port with SO_REUSEADDR and listened first
        sock.close()
        raise _cannot_listen(host, port, exc) from None
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def _cannot_listen(host: str, port: int, exc: OSError) -> MiaError:
    if exc.errno == errno.EADDRINUSE:
        return MiaError(f"--port {port}: address already in use on {host}; pick another with --port")
    return MiaError(f"--host {host} --port {port}: cannot listen there ({exc.strerror or exc})")


def uvicorn_server(app):
    """uvicorn for ``app``, to ``run(sockets=[sock])`` on a socket from :func:`bind`; its own access log is off
    (:class:`AccessLog` writes one line per request, or none with ``mia serve --quiet``)."""
    return uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, backlog=BACKLOG))


def _page(name: str, card: dict, searched: str) -> str:
    """The page, with the model and the gallery (``searched``: what it holds) named in its
    header (all text escaped)."""
    facts = " · ".join(f"{label} {escape(displayable(card[label]))}"
                       for label in ("trained on", "image encoder", "text encoder", "exported"))
    alignments = "".join(f"<li>{escape(displayable(a))} × {escape(str(w))}</li>" for a, w in card["alignments"].items())
    return (PAGE.replace("{{name}}", escape(displayable(name))).replace("{{facts}}", facts)
            .replace("{{searched}}", escape(searched)).replace("{{alignments}}", alignments))


def _api_page() -> str:
    """:data:`OPENAPI` as a page for people: each route, what it does, its parameters."""
    rows = []
    for path, methods in OPENAPI["paths"].items():
        for method, spec in methods.items():
            params = "".join(f"<li><code>{p['name']}</code> ({p['in']}): {escape(p.get('description', ''))}</li>"
                             for p in spec.get("parameters", []))
            rows.append(f"<h2><code>{method.upper()} {escape(path)}</code></h2><p>{escape(spec['summary'])}</p>"
                        + (f"<ul>{params}</ul>" if params else ""))
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>mia search API</title>"
            "<style>body{font-family:system-ui,sans-serif;max-width:50em;margin:2em auto;padding:0 1em}"
            "h2{font-size:1.05em;margin-top:1.6em}</style></head><body><h1>The mia search API</h1>"
            f"<p>{escape(OPENAPI['info']['description'])} Machine-readable: <a href='/openapi.json'>/openapi.json</a> "
            "(OpenAPI 3). Errors are JSON: <code>{\"error\": \"...\"}</code>.</p>" + "".join(rows) + "</body></html>")


@functools.lru_cache(maxsize=4096)
def _thumbnail(path: Path, file_size: int, mtime_ns: int) -> bytes:
    """Cached by the file's size and mtime too, so a replaced file is never shown as it was."""
    return thumbnail_jpeg(path)
