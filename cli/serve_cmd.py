"""``mia serve``: the search page and JSON API (see :mod:`mia.export.serve`)."""

from __future__ import annotations

import ipaddress

import click

from mia.cli.params import COUNT, Number
from mia.core.settings.config import DEVICES
from mia.core.base.errors import MiaError
from mia.export.searching import DEFAULT_RERANK, Searcher, check_gallery_source


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


@click.command(name="serve")
@click.option("--model", "model_dir", required=True, help="exported model directory (mia export onnx)")
@click.option("--gallery", help="folder of person images (encoded once, then cached)")
@click.option("--index", "index_dir", help="gallery index from 'mia index build' (two-stage search)")
@click.option("--gallery-root", help="with --index: where the indexed images are now, if the folder moved since the build")
@click.option("--rerank", type=COUNT, default=None, help=f"with --index: entries re-scored by the full model (default {DEFAULT_RERANK})")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="address to listen on (anything but loopback serves your gallery to the network)")
@click.option("--port", type=Number(int, minimum=0, maximum=65535), default=8000, show_default=True,
              help="port to listen on (0: any free one)")
@click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True)
@click.option("--cache-dir", help="with --gallery: where features are cached (default: ~/.cache/mia/galleries, or $MIA_CACHE_DIR/galleries)")
@click.option("--quiet", is_flag=True, help="no access log (one line per request on stderr)")
def serve_command(model_dir, gallery, index_dir, gallery_root, rerank, host, port, device, cache_dir, quiet):
    """Serve a search page and a JSON API (/api/search?q=...&k=...) over a gallery."""
    check_gallery_source(gallery, index_dir)
    try:
        from mia.export.serve import bind, create_app, listen, uvicorn_server
    except ImportError as exc:
        raise MiaError(f"mia serve needs the serving extra: pip install 'mia-reid[serve]' ({exc.name} is missing)") from None
    from mia.export.runtime import Retriever

    log = lambda m: click.echo(m, err=True)  # noqa: E731
    sock = bind(host, port)  # first: a busy port is one line, before minutes of loading
    with sock:
        retriever = Retriever(model_dir, device=device)
        searcher = Searcher(retriever, gallery, index_dir, cache_dir, rerank, log=log, gallery_root=gallery_root)
        if not _is_loopback(host):
            log(f"warning: listening on {host}: anyone who can reach it can search the gallery and see its images")
        app = create_app(searcher, model_dir, log=log, access_log=not quiet)
        log(f"serving {len(searcher)} images on {listen(sock)} (Ctrl-C stops)")
        uvicorn_server(app).run(sockets=[sock])
