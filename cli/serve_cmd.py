"""``mia serve``: the search page and JSON API (see :mod:`mia.export.serve`)."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import click

from mia.cli.params import COUNT, Number
from mia.core.config import DEVICES
from mia.core.errors import MiaError


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


@click.command(name="serve")
@click.option("--model", "model_dir", required=True, help="exported model directory (mia export onnx)")
@click.option("--gallery", help="folder of person images (encoded once, then cached)")
@click.option("--index", "index_dir", help="gallery index from 'mia index build' (two-stage search)")
@click.option("--rerank", type=COUNT, default=None, help="with --index: entries re-scored by the full model (default 100)")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="address to listen on (anything but loopback serves your gallery to the network)")
@click.option("--port", type=Number(int, minimum=0, maximum=65535), default=8000, show_default=True)
@click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True)
@click.option("--cache-dir", help="with --gallery: where features are cached (default: MODEL/gallery-cache)")
def serve_command(model_dir, gallery, index_dir, rerank, host, port, device, cache_dir):
    """Serve a search page and a JSON API (/api/search?q=...&k=...) over a gallery."""
    if (gallery is None) == (index_dir is None):
        raise MiaError("give exactly one of --gallery FOLDER and --index INDEX")
    try:
        import uvicorn

        from mia.export.serve import create_app
    except ImportError as exc:
        raise MiaError(f"mia serve needs the serving extra: pip install 'mia-reid[serve]' ({exc.name} is missing)") from None
    from mia.export.runtime import Retriever
    from mia.export.searching import Searcher

    log = lambda m: click.echo(m, err=True)  # noqa: E731
    retriever = Retriever(model_dir, device=device)
    searcher = Searcher(retriever, gallery, index_dir, cache_dir, rerank, log=log)
    if not _is_loopback(host):
        log(f"warning: listening on {host}: anyone who can reach it can search the gallery and see its images")
    title = f"{Path(model_dir).name} ({'+'.join(retriever.manifest['alignments'])}), {len(searcher)} images"
    log(f"serving {len(searcher)} images on http://{host}:{port}/ (Ctrl-C stops)")
    uvicorn.run(create_app(searcher, title), host=host, port=port, log_level="warning")
