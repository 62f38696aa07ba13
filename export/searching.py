"""One way to search whatever the gallery is, a folder or an index: both are a gallery
store (:mod:`mia.export.store`).  Used by ``mia search`` and ``mia serve``; torch-free."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from mia.core.base.errors import MiaError

if TYPE_CHECKING:
    from mia.export.moments import Moment
    from mia.export.runtime import Retriever

#: re-ranked entries per query unless --rerank says otherwise (its effect: docs/deploy.md)
DEFAULT_RERANK = 100


def check_gallery_source(gallery, index) -> None:
    """The rule of every command that searches: exactly one gallery, a folder or an index.
    Commands call it before loading anything, so the mistake costs no model load."""
    if (gallery is None) == (index is None):
        raise MiaError("give exactly one of --gallery FOLDER and --index INDEX")


class Searcher:
    """``search(query, top_k) -> [(path, score)]`` over the store of a folder (every image
    scored: right for thousands) or of an index (two-stage: right for millions); over an
    index of footage (``moments`` is set) ``search_moments`` ranks people's passages."""

    def __init__(self, retriever: Retriever, gallery: str | Path | None = None, index: str | Path | None = None,
                 cache_dir: str | Path | None = None, rerank: int | None = None, log=print, show_progress=True,
                 gallery_root: str | Path | None = None):
        from mia.export.moments import MomentIndex
        from mia.export.store import cached_store, open_store

        check_gallery_source(gallery, index)
        if gallery_root is not None and index is None:
            raise MiaError("--gallery-root says where an index's images moved to: use it with --index")
        self.retriever = retriever
        if index is not None:
            self.store = open_store(index, retriever, gallery_root=gallery_root)
            if gallery_root is not None and MomentIndex.holds(self.store):
                raise MiaError(f"--gallery-root: index {index} is of footage and holds its crops itself; "
                               "--gallery-root is for an index of an image folder that moved")
            warning = self.store.check_gallery()  # before any search: a moved gallery would answer stale paths
            if warning:
                log(f"warning: {warning}")
            self.rerank = rerank or DEFAULT_RERANK
        else:
            self.store = cached_store(retriever, gallery, cache_dir, log=log, show_progress=show_progress)
            self.rerank = None
        self.paths, self.root = self.store.paths, self.store.gallery
        self.moments = MomentIndex(self.store) if self.store.root and MomentIndex.holds(self.store) else None

    def __len__(self) -> int:
        return len(self.paths)

    def search(self, query: str, top_k: int) -> list[tuple[Path, float]]:
        return self.store.rank(self.retriever, query, top_k, self.rerank)

    def search_moments(self, query: str, top_k: int) -> list[Moment]:
        """Over a video index: the ``top_k`` best tracks (see :mod:`mia.export.moments`)."""
        return self.moments.search(self.retriever, query, top_k, self.rerank)
