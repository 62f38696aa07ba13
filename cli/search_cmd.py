"""``mia search``: find people in a folder of crops from one description (exported model)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from mia.core.device import DEVICES
from mia.core.errors import MiaError


@click.command(name="search")
@click.argument("description")
@click.option("--model", "model_dir", required=True, help="exported model directory (mia export onnx)")
@click.option("--gallery", required=True, help="folder of person images (searched recursively)")
@click.option("--top-k", type=int, default=10, show_default=True, help="how many results to show")
@click.option("--json", "as_json", is_flag=True, help="print the results as JSON")
@click.option("--html", "html_path", help="also write a self-contained HTML page of the results")
@click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True)
@click.option("--cache-dir", help="where gallery features are cached (default: MODEL/gallery-cache)")
def search_command(description, model_dir, gallery, top_k, as_json, html_path, device, cache_dir):
    """Rank the images under --gallery by how well they match DESCRIPTION."""
    if top_k < 1:
        raise MiaError(f"--top-k {top_k}: must be at least 1")
    if not description.strip():
        raise MiaError("DESCRIPTION is empty: describe the person to look for")
    from mia.export.gallery import GalleryIndex
    from mia.export.runtime import Retriever

    log = lambda m: click.echo(m, err=True)  # noqa: E731
    retriever = Retriever(model_dir, device=device)
    index = GalleryIndex.build(retriever, gallery, cache_dir, log=log, show_progress=not as_json)
    results = [(index.paths[i], score) for i, score in retriever.search(description, index.features, top_k)]
    if as_json:
        click.echo(json.dumps({"query": description, "provider": retriever.providers[0],
                               "results": [{"rank": rank, "path": str(path), "score": score}
                                           for rank, (path, score) in enumerate(results, start=1)]}))
    else:
        for rank, (path, score) in enumerate(results, start=1):
            click.echo(f"{rank:>3}  {score:.4f}  {path}")
    if html_path:
        from mia.export.html import search_page

        name = f"{Path(model_dir).name} ({'+'.join(retriever.manifest['alignments'])})"
        search_page(html_path, description, results, name)
        log(f"wrote {html_path}")
