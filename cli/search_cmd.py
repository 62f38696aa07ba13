"""``mia search``: find people in a folder of crops from one description (exported model)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from mia.cli.params import COUNT
from mia.core.settings.config import DEVICES
from mia.core.base.display import displayable
from mia.core.base.errors import MiaError
from mia.export.searching import DEFAULT_RERANK, Searcher, check_gallery_source
from mia.core.training.outputs import check_page_path


def query_warnings(retriever, description: str) -> list[str]:
    """What the model cannot read in ``description``: words outside its vocabulary, and
    whether anything is left to rank by at all."""
    known, unknown = retriever.unknown_words(description)
    if not known:
        seen = f" ({', '.join(unknown[:5])})" if unknown else " (only punctuation)"
        return [f"the model knows none of the words in DESCRIPTION{seen}: the ranking is meaningless"]
    if unknown:
        return [f"words the model does not know were ignored: {', '.join(dict.fromkeys(unknown))}"]
    return []


@click.command(name="search")
@click.argument("description")
@click.option("--model", "model_dir", required=True, help="exported model directory (mia export onnx)")
@click.option("--gallery", help="folder of person images (searched recursively; encoded once, then cached)")
@click.option("--index", "index_dir", help="gallery index from 'mia index build' (two-stage search)")
@click.option("--gallery-root", help="with --index: where the indexed images are now, if the folder moved since the build")
@click.option("--rerank", type=COUNT, default=None,
              help=f"with --index: entries re-scored by the full model after the first stage (default {DEFAULT_RERANK})")
@click.option("--top-k", type=COUNT, default=10, show_default=True, help="how many results to show")
@click.option("--json", "as_json", is_flag=True, help="print the results as JSON")
@click.option("--html", "html_path", help="also write a self-contained HTML page of the results")
@click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True)
@click.option("--cache-dir", help="where gallery features are cached (default: ~/.cache/mia/galleries, or $MIA_CACHE_DIR/galleries)")
def search_command(description, model_dir, gallery, index_dir, gallery_root, rerank, top_k, as_json, html_path, device,
                   cache_dir):
    """Rank the images under --gallery (or in --index) by how well they match DESCRIPTION."""
    if not description.strip():
        raise MiaError("DESCRIPTION is empty: describe the person to look for")
    try:
        description.encode("utf-8")
    except UnicodeEncodeError as exc:  # undecodable bytes on the command line arrive as lone surrogates
        raise MiaError(f"DESCRIPTION is not valid UTF-8 text (character {exc.start + 1} cannot be encoded); "
                       "check the terminal's encoding") from None
    check_gallery_source(gallery, index_dir)
    if html_path:
        check_page_path("--html", html_path)
    from mia.export.runtime import Retriever

    log = lambda m: click.echo(m, err=True)  # noqa: E731
    retriever = Retriever(model_dir, device=device)
    searcher = Searcher(retriever, gallery, index_dir, cache_dir, rerank, log=log, show_progress=not as_json,
                        gallery_root=gallery_root)
    warnings = query_warnings(retriever, description)
    for warning in warnings:
        log(f"warning: {warning}")
    if searcher.moments is not None:
        _show_moments(searcher.search_moments(description, top_k), description, retriever, warnings, as_json,
                      html_path, model_dir, log)
        return
    results = searcher.search(description, top_k)
    if as_json:
        click.echo(json.dumps({"query": description, "provider": retriever.providers[0], "warnings": warnings,
                               "results": [{"rank": rank, "path": str(path), "score": score}
                                           for rank, (path, score) in enumerate(results, start=1)]}))
    else:
        for rank, (path, score) in enumerate(results, start=1):
            click.echo(f"{rank:>3}  {score:.4f}  {displayable(path)}")
    if html_path:
        from mia.export.html import search_page

        search_page(html_path, description, results, _page_name(model_dir, retriever))
        log(f"wrote {html_path}")


def _page_name(model_dir, retriever) -> str:
    """How a results page names the model: its folder and its alignments."""
    return f"{Path(model_dir).name} ({'+'.join(retriever.manifest['alignments'])})"


def _show_moments(moments, description, retriever, warnings, as_json, html_path, model_dir, log) -> None:
    """A video index's results: each a person's passage, with its time span and frame."""
    if as_json:
        click.echo(json.dumps({"query": description, "provider": retriever.providers[0], "warnings": warnings,
                               "results": [{"rank": rank, **moment.as_dict()}
                                           for rank, moment in enumerate(moments, start=1)]}))
    else:
        for rank, moment in enumerate(moments, start=1):
            click.echo(f"{rank:>3}  {moment.score:.4f}  {displayable(Path(moment.video).name)}  {moment.span}  "
                       f"track {moment.track}  (best match at {moment.time:.1f} s, frame {moment.frame})")
    if html_path:
        from mia.export.html import moments_page

        moments_page(html_path, description, moments, _page_name(model_dir, retriever))
        log(f"wrote {html_path}")
