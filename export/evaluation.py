"""The standard evaluation run through an exported model (ONNX Runtime or TorchScript).

Used by ``mia eval --backend onnx`` and by the export's recall check; it touches the model
only through :class:`Retriever`, so what it measures is what a deployment gets.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from mia.core.evaluation.metrics import retrieval_metrics
from mia.core.base.progress import Progress
from mia.core.data.records import Record
from mia.export.runtime import Retriever


def evaluate_retriever(retriever: Retriever, records: Sequence[Record], chunk: int | None = None,
                       batch_size: int = 64, show_progress: bool = True) -> tuple[dict[str, float], np.ndarray]:
    """R1/R5/R10/mAP/mINP with every caption of ``records`` querying every image, and the
    ``[queries, gallery]`` similarity they come from."""
    paths = [r.image for r in records]
    batches = -(-len(paths) // batch_size)
    with Progress(batches, f"encode images ({retriever.providers[0]})", unit="batch", enabled=show_progress) as bar:
        images = retriever.encode_images(paths, batch_size, progress=lambda done, total: bar.update())
    captions = [c for r in records for c in r.captions]
    query_pids = np.asarray([r.person_id for r in records for _ in r.captions])
    gallery_pids = np.asarray([r.person_id for r in records])
    with Progress(len(captions), "encode captions", unit="caption", enabled=show_progress) as bar:
        texts = retriever.encode_texts(captions, progress=lambda done, total: bar.update(done - bar.done))
    with Progress(len(captions), "score", unit="query", enabled=show_progress) as bar:
        similarity = retriever.score(texts, images, chunk, progress=lambda done, total: bar.update(done - bar.done))
    return retrieval_metrics(similarity, query_pids, gallery_pids), similarity
