"""Search at scale: a gallery index of ``--entries`` random vectors of the real shapes (global
[D], stripes [K, D]), its build time and memory, and the latency of one query scored
against every entry (exhaustive) and by two-stage search (FAISS top ``--rerank``, then the
fused score over those).

    python benchmarks/bench_search.py                         # 1,000,000 entries (about 12 min on 2 cores)
    python benchmarks/bench_search.py --quick                 # 20,000 entries
    python benchmarks/bench_search.py --quality --model EXPORT --data synthpedes   # two-stage vs exhaustive top-10

Random vectors measure time and memory, not recall (they have no clusters for the inverted
lists to find); ``--quality`` measures agreement on a real gallery with a trained model.
The scorer is a freshly initialised mia model (global, part and fine) exported to ONNX:
scoring costs the same whatever the weights.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _common import random_export, report


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def random_index(directory: Path, retriever, entries: int, embed_dim: int, parts: int, kind: str) -> float:
    """Write an index of random entries the way ``mia index build`` lays it out; returns seconds."""
    from mia.export.store import STORED_DTYPES, finish_store

    started = time.perf_counter()
    rng = np.random.default_rng(0)
    arrays = {name: np.lib.format.open_memmap(directory / f"{name}.npy", mode="w+", dtype=STORED_DTYPES[name],
                                              shape=(entries, *shape))
              for name, shape in (("image_global", (embed_dim,)), ("image_parts", (parts, embed_dim)))}
    for start in range(0, entries, 50_000):
        stop = min(entries, start + 50_000)
        for name, array in arrays.items():
            array[start:stop] = rng.standard_normal((stop - start, *array.shape[1:]), dtype=np.float32)
    for array in arrays.values():
        array.flush()
    folder = Path("/gallery")
    paths = [folder / f"{i:07d}.jpg" for i in range(entries)]
    finish_store(directory, folder, paths, [(0, 0)] * entries, arrays, kind,
                 {"model_digest": retriever.digest, "features": sorted(arrays), "shard": {"rank": 0, "world_size": 1}})
    return time.perf_counter() - started


def queries(retriever, count: int) -> list[dict[str, np.ndarray]]:
    words = retriever.tokenizer.words[2:]
    rng = np.random.default_rng(1)
    return [retriever.encode_texts([" ".join(rng.choice(words, size=12))]) for _ in range(count)]


def exhaustive_seconds(retriever, index, text: dict, chunk: int = 100_000) -> float:
    """One query scored against every entry (gallery in chunks: float32 stripes of a million
    entries would need 12 GB at once)."""
    from mia.export.runtime import EncodedImages

    started = time.perf_counter()
    scores = []
    for start in range(0, len(index), chunk):
        rows = np.arange(start, min(len(index), start + chunk))
        gallery = EncodedImages({name: np.asarray(array[rows], np.float32) for name, array in index.arrays.items()})
        scores.append(retriever.score(text, gallery)[0])
    np.argsort(-np.concatenate(scores))[:10]
    return time.perf_counter() - started


def two_stage_seconds(retriever, index, text: dict, rerank: int) -> float:
    """What ``GalleryStore.rank`` does after encoding the query: FAISS, then the fused score."""
    from mia.export.runtime import EncodedImages

    started = time.perf_counter()
    rows = index.candidates(text["text_global"][0], rerank)
    scores = retriever.score(text, EncodedImages(index.features(rows)))[0]
    np.argsort(-scores)[:10]
    return time.perf_counter() - started


def speed(args) -> None:
    from mia.export.store import open_store
    from mia.export.runtime import Retriever

    work = Path(tempfile.mkdtemp(prefix="bench-search-", dir=args.work))
    try:
        retriever = Retriever(random_export(work, embed_dim=args.embed_dim, num_parts=args.parts), device="cpu")
        index_dir = work / "index"
        index_dir.mkdir()
        build = random_index(index_dir, retriever, args.entries, args.embed_dim, args.parts, args.index_type)
        build_rss = peak_rss_gib()
        index = open_store(index_dir, retriever)
        texts = queries(retriever, args.queries)
        for text in texts[:3]:  # warm the page cache and ONNX Runtime
            two_stage_seconds(retriever, index, text, args.rerank)
        staged = np.array([two_stage_seconds(retriever, index, text, args.rerank) for text in texts]) * 1e3
        full = np.array([exhaustive_seconds(retriever, index, text) for text in texts[: args.exhaustive_queries]]) * 1e3
        disk = sum(p.stat().st_size for p in index_dir.iterdir()) / 2**30
        p50, p99, full_p50 = np.percentile(staged, 50), np.percentile(staged, 99), np.percentile(full, 50)
        rows = [["exhaustive (every entry, fused)", len(full), round(full_p50, 1), round(np.percentile(full, 99), 1)],
                [f"two-stage (FAISS {index.meta['faiss']['kind']} top {args.rerank}, fused)", len(staged),
                 round(p50, 2), round(p99, 2)]]
        report("bench_search", torch.device("cpu"), ["search", "queries", "p50 ms", "p99 ms"], rows,
               {"entries": args.entries, "shapes": f"global [{args.embed_dim}], stripes [{args.parts}, {args.embed_dim}]",
                "faiss": index.meta["faiss"], "build_seconds": round(build, 1), "index_on_disk_gib": round(disk, 2),
                "peak_rss_gib": round(max(build_rss, peak_rss_gib()), 2), "speedup_p50": round(full_p50 / p50, 1)},
               args.out)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def two_stage_quality(retriever, index, captions: list[str], query_pids: np.ndarray, gallery_pids: np.ndarray,
                      reranks: list[int], top_k: int = 10) -> dict:
    """Two-stage search against scoring every entry, on the same stored features: per
    ``rerank`` N, the share of queries whose top ``top_k`` is the same list, and R1/mAP of
    both rankings (two-stage: the N re-scored first, the rest by global cosine)."""
    from mia.core.evaluation.metrics import retrieval_metrics, top_k as best_of
    from mia.export.runtime import EncodedImages
    from mia.export.store import unit_rows

    texts = retriever.encode_texts(captions)
    gallery = EncodedImages({name: np.asarray(array, dtype=np.float32) for name, array in index.arrays.items()})
    full = retriever.score(texts, gallery)
    cosines = unit_rows(texts["text_global"]) @ unit_rows(gallery.arrays["image_global"]).T
    exhaustive_top = best_of(full, top_k)[0]
    result = {"queries": len(captions), "gallery": len(index), "exhaustive": retrieval_metrics(full, query_pids, gallery_pids)}
    for rerank in reranks:
        _, candidates = index.faiss.search(unit_rows(texts["text_global"]), min(rerank, len(index)))
        staged = cosines - (np.abs(full).max() + 2.0)  # every entry not re-scored ranks below the re-scored ones
        rows = np.arange(len(captions))[:, None]
        staged[rows, candidates] = full[rows, candidates]
        same = (best_of(staged, top_k)[0] == exhaustive_top).all(axis=1)
        result[rerank] = {"top_k_agreement": float(same.mean()),
                          **{f"two_stage_{k}": v for k, v in retrieval_metrics(staged, query_pids, gallery_pids).items()}}
    return result


def quality(args) -> None:
    """Two-stage against exhaustive on a real split: which --rerank keeps the top-10."""
    from mia.core.data.records import load_dataset
    from mia.export.store import build_index, open_store
    from mia.export.runtime import Retriever

    retriever = Retriever(args.model, device="cpu")
    records = load_dataset(args.data).split(args.split)
    folder = Path(records[0].image).parent
    work = Path(tempfile.mkdtemp(prefix="bench-quality-", dir=args.work))
    try:
        build_index(retriever, folder, work / "index", workers=max(1, args.workers), log=lambda m: None)
        index = open_store(work / "index", retriever)
        by_path = {r.image.resolve(): r.person_id for r in records}
        gallery_pids = np.asarray([by_path[p] for p in index.paths])
        captions = [c for r in records for c in r.captions]
        query_pids = np.asarray([r.person_id for r in records for _ in r.captions])
        result = two_stage_quality(retriever, index, captions, query_pids, gallery_pids, args.reranks)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    full = result["exhaustive"]
    rows = [[n, round(100 * result[n]["top_k_agreement"], 2), round(result[n]["two_stage_R1"] - full["R1"], 2),
             round(result[n]["two_stage_mAP"] - full["mAP"], 2)] for n in args.reranks]
    report("bench_search_quality", torch.device("cpu"), ["rerank N", "top-10 agreement %", "R1 - exhaustive",
                                                        "mAP - exhaustive"], rows,
           {"model": str(args.model), "data": f"{args.data} {args.split}", "queries": result["queries"],
            "gallery": result["gallery"], "exhaustive": full}, args.out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--embed-dim", type=int, default=512)
    parser.add_argument("--parts", type=int, default=6)
    parser.add_argument("--rerank", type=int, default=100)
    parser.add_argument("--index-type", default="auto")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--exhaustive-queries", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="20,000 entries, 50 queries")
    parser.add_argument("--quality", action="store_true", help="two-stage vs exhaustive on --data with --model")
    parser.add_argument("--model", help="exported model (--quality)")
    parser.add_argument("--data", default="synthpedes")
    parser.add_argument("--split", default="test")
    parser.add_argument("--reranks", type=lambda v: [int(x) for x in v.split(",")], default=[10, 25, 50, 100, 200])
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--work", default=None, help="scratch folder (default: the system's)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    if args.quick:
        args.entries, args.queries, args.exhaustive_queries = 20_000, 50, 5
    if args.quality:
        if not args.model:
            sys.exit("--quality needs --model EXPORT")
        quality(args)
    else:
        speed(args)


if __name__ == "__main__":
    main()
