"""Self-contained HTML pages of search results and of an evaluation's rankings.

Everything that came from outside (queries, captions, file names) goes through
:func:`html.escape`, so a caption such as ``<script>`` is shown, never run.  A search
page embeds its few thumbnails (one portable file); an evaluation page links its
images by relative URL instead, since a test split has thousands of queries.

Torch-free: numpy, Pillow and the standard library only.
"""

from __future__ import annotations

import base64
import io
import os
from html import escape
from pathlib import Path
from typing import Sequence
from urllib.parse import quote

import numpy as np

from mia.core.base import atomic
from mia.core.base.display import displayable
from mia.core.training.outputs import PAGE_GENERATOR
from mia.core.data.preprocess import load_rgb

THUMB_HEIGHT = 256
METRIC_KEYS = ("R1", "R5", "R10", "mAP", "mINP")

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.3em; } .meta { color: #666; }
.query { margin: 1.5em 0 0.5em; } .caption { font-size: 1.05em; }
.row { display: flex; flex-wrap: wrap; gap: 10px; }
.tile { margin: 0; width: 140px; border: 4px solid #ddd; border-radius: 4px; padding: 4px; font-size: 0.8em; }
.tile img { width: 100%; height: auto; display: block; }
.tile figcaption { word-break: break-all; }
.tile.hit { border-color: #2a2; } .tile.miss { border-color: #d22; }
.mark { font-weight: bold; } .hit .mark { color: #2a2; } .miss .mark { color: #d22; }
.moment { margin: 0; display: flex; gap: 8px; align-items: flex-start; border: 1px solid #ddd; border-radius: 4px;
  padding: 6px; font-size: 0.85em; }
.frame { position: relative; width: 360px; } .frame img { width: 100%; display: block; }
.box { position: absolute; border: 2px solid #f30; box-sizing: border-box; }
.moment .crop { height: 150px; width: auto; } .moment figcaption { width: 150px; }
table { border-collapse: collapse; } td, th { border: 1px solid #ccc; padding: 4px 10px; text-align: right; }
"""


def _page(title: str, body: str) -> str:
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">{PAGE_GENERATOR}<title>{escape(displayable(title))}</title>'
            f"<style>{STYLE}</style></head>\n<body>\n{body}\n</body></html>\n")


def _tile(src: str, rank: int, score: float, path: str, correct: bool | None = None) -> str:
    """One ranked image; ``correct`` (None: unknown) adds the green/red marking."""
    kind, mark = {True: (" hit", "&#10003; "), False: (" miss", "&#10007; "), None: ("", "")}[correct]
    return (f'<figure class="tile{kind}"><img src="{escape(src)}" alt="rank {rank}" loading="lazy">'
            f'<figcaption><span class="mark">{mark}</span>#{rank} &middot; {score:.4f}<br>{escape(displayable(path))}'
            f"</figcaption></figure>")


def thumbnail_jpeg(path: str | Path, size: int = THUMB_HEIGHT) -> bytes:
    """A small JPEG of the image, at most ``size`` pixels wide and high: what the result
    pages embed and what ``mia serve`` sends."""
    image = load_rgb(path)
    image.thumbnail((size, size))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def thumbnail_data_uri(path: str | Path, size: int = THUMB_HEIGHT) -> str:
    """:func:`thumbnail_jpeg` as a ``data:`` URI, so the page needs no other file."""
    return "data:image/jpeg;base64," + base64.b64encode(thumbnail_jpeg(path, size)).decode("ascii")


def search_page(out_path: str | Path, query: str, results: Sequence[tuple[Path, float]], model_name: str) -> None:
    """The query and its ranked images, thumbnails embedded (the page travels alone)."""
    tiles = "".join(_tile(thumbnail_data_uri(path), rank, score, str(path))
                    for rank, (path, score) in enumerate(results, start=1))
    body = (f"<h1>mia search</h1><p class=\"meta\">model {escape(displayable(model_name))} &middot; top {len(results)}</p>"
            f'<p class="caption query">{escape(query)}</p><div class="row">{tiles}</div>')
    atomic.write_text(out_path, _page(f"mia search: {query}", body))


def moments_page(out_path: str | Path, query: str, moments: Sequence, model_name: str) -> None:
    """A video index's results: for each passage its time span, the frame with the person's
    box drawn over it (positioned in percent of the frame, so it scales with the picture)
    and the crop that matched; images embedded, like :func:`search_page`."""
    cards = []
    for rank, moment in enumerate(moments, start=1):
        width, height = moment.frame_size
        x1, y1, x2, y2 = moment.box
        box = (f"left:{100 * x1 / width:.2f}%;top:{100 * y1 / height:.2f}%;"
               f"width:{100 * (x2 - x1) / width:.2f}%;height:{100 * (y2 - y1) / height:.2f}%")
        cards.append(
            f'<figure class="moment"><div class="frame"><img src="{thumbnail_data_uri(moment.frame_image, 480)}" '
            f'alt="frame {moment.frame}"><div class="box" style="{box}"></div></div>'
            f'<img class="crop" src="{thumbnail_data_uri(moment.crop)}" alt="rank {rank}">'
            f'<figcaption>#{rank} &middot; {moment.score:.4f}<br><b>{escape(moment.span)}</b> '
            f'in {escape(displayable(Path(moment.video).name))}<br>track {moment.track}, best match at '
            f'{moment.time:.1f} s</figcaption></figure>')
    body = (f"<h1>mia search</h1><p class=\"meta\">model {escape(displayable(model_name))} &middot; "
            f"top {len(moments)} passages</p><p class=\"caption query\">{escape(query)}</p>"
            f'<div class="row">{"".join(cards)}</div>')
    atomic.write_text(out_path, _page(f"mia search: {query}", body))


def _relative_url(path: str | Path, base: Path) -> str:
    """The file's own bytes, percent-encoded: a name that is not UTF-8 still links to it."""
    return quote(os.fsencode(Path(os.path.relpath(os.path.abspath(path), base)).as_posix()))


def _metrics_table(metrics: dict) -> str:
    keys = [k for k in METRIC_KEYS if k in metrics]
    head = "".join(f"<th>{k}</th>" for k in keys)
    cells = "".join(f"<td>{float(metrics[k]):.2f}</td>" for k in keys)
    return f"<table><tr>{head}</tr><tr>{cells}</tr></table>"


def evaluation_page(out_path: str | Path, title: str, metrics: dict, queries: Sequence[str], query_pids: Sequence[int],
                    gallery_paths: Sequence[str], gallery_pids: Sequence[int], ranking: np.ndarray, scores: np.ndarray,
                    failures_only: bool = False, limit: int | None = None) -> int:
    """Metrics, then each query's top-ranked images marked right (same person) or wrong.

    ``ranking``/``scores`` are ``[Q, k]`` gallery indices and their scores, best first;
    ``failures_only`` keeps the queries whose top-1 is wrong, ``limit`` the first that many
    of those shown (a page of ten thousand queries is a page nobody reads).  Returns how
    many are shown.
    """
    base = Path(os.path.abspath(out_path)).parent
    urls = [_relative_url(p, base) for p in gallery_paths]
    sections = []
    for q, (caption, pid) in enumerate(zip(queries, query_pids)):
        hits = [gallery_pids[g] == pid for g in ranking[q]]
        if failures_only and hits[0]:
            continue
        if limit is not None and len(sections) == limit:
            break
        tiles = "".join(_tile(urls[g], rank, float(s), str(gallery_paths[g]), hit)
                        for rank, (g, s, hit) in enumerate(zip(ranking[q], scores[q], hits), start=1))
        sections.append(f'<section class="query"><p class="caption">#{q} &middot; person {escape(str(pid))}: '
                        f'{escape(caption)}</p><div class="row">{tiles}</div></section>')
    shown = "failures (top-1 wrong)" if failures_only else "queries"
    body = (f"<h1>{escape(displayable(title))}</h1>{_metrics_table(metrics)}"
            f'<p class="meta">the first {len(sections)} {shown} of {len(queries)} queries</p>{"".join(sections)}')
    atomic.write_text(out_path, _page(title, body))
    return len(sections)
