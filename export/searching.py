"""One way to search whatever the gallery is: a folder (encoded and cached, every image
scored: right for thousands) or an index (two-stage: right for millions).  Used by
``mia search`` and ``mia serve``; torch-free."""

from __future__ import annotations

from pathlib import Path

from mia.core.errors import MiaError
from mia.export.runtime import Retriever


class Searcher:
    """``search(query, top_k) -> [(path, score)]`` over a folder or an index."""

    def __init__(self, retriever: Retriever, gallery: str | Path | None = None, index: str | Path | None = None,
                 cache_dir: str | Path | None = None, rerank: int | None = None, log=print, show_progress=True,
                 gallery_root: str | Path | None = None):
        if (gallery is None) == (index is None):
            raise MiaError("give exactly one of --gallery FOLDER and --index INDEX")
        if gallery_root is not None and index is None:
            raise MiaError("--gallery-root says where an index's images moved to: use it with --index")
        self.retriever = retriever
        if index is not None:
            from mia.export.index import DEFAULT_RERANK, open_index

            self.index, self.folder_index = open_index(index, retriever, gallery_root=gallery_root), None
            warning = self.index.check_gallery()  # before any search: a moved gallery would answer stale paths
            if warning:
                log(f"warning: {warning}")
            self.rerank = rerank or DEFAULT_RERANK
            self.paths, self.root = self.index.paths, self.index.gallery
        else:
            from mia.export.gallery import GalleryIndex

            self.folder_index, self.index = GalleryIndex.build(retriever, gallery, cache_dir, log=log,
                                                               show_progress=show_progress), None
            self.paths, self.root = self.folder_index.paths, Path(gallery).resolve()

    def __len__(self) -> int:
        return len(self.paths)

    def search(self, query: str, top_k: int) -> list[tuple[Path, float]]:
        if self.index is not None:
            return self.index.search(self.retriever, query, top_k, self.rerank)
        hits = self.retriever.search(query, self.folder_index.features, top_k)
        return [(self.folder_index.paths[i], score) for i, score in hits]
