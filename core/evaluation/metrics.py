"""The field's standard text-to-image retrieval metrics (CUHK-PEDES protocol).

Every query (caption) is ranked against the whole gallery; a gallery image is correct
when its person id equals the query's.  R@K is the share of queries with a correct image
in the top K; AP averages the precision at each correct image's rank; INP is the number
of correct images over the rank of the last one (Ye et al., TPAMI 2021).  A query with no
correct image in the gallery counts as a miss everywhere (AP = INP = 0).
"""

from __future__ import annotations

import numpy as np

METRIC_NAMES = ("R1", "R5", "R10", "mAP", "mINP")


def _to_numpy(array) -> np.ndarray:
    if hasattr(array, "detach"):  # torch tensor, without importing torch here
        array = array.detach().float().cpu().numpy()
    return np.asarray(array)


def per_query_stats(similarity: np.ndarray, query_pids: np.ndarray, gallery_pids: np.ndarray) -> dict:
    """First-hit rank, AP and INP of each query row (ranks are 1-based; 0 = never found)."""
    order = np.argsort(-similarity, axis=1, kind="stable")
    matches = gallery_pids[order] == query_pids[:, None]
    relevant = matches.sum(axis=1)
    found = relevant > 0
    ranks = np.arange(1, matches.shape[1] + 1)
    first_hit = np.where(found, matches.argmax(axis=1) + 1, 0)
    hits_so_far = np.cumsum(matches, axis=1)
    precision_sum = (hits_so_far / ranks * matches).sum(axis=1)
    last_hit = matches.shape[1] - matches[:, ::-1].argmax(axis=1)
    ap = np.where(found, precision_sum / np.maximum(relevant, 1), 0.0)
    inp = np.where(found, relevant / last_hit, 0.0)
    return {"first_hit": first_hit, "ap": ap, "inp": inp}


def retrieval_metrics(similarity, query_pids, gallery_pids, chunk: int = 512) -> dict[str, float]:
    """R1, R5, R10, mAP, mINP in percent for a ``[queries, gallery]`` similarity matrix.

    Accepts numpy arrays or torch tensors; works through ``chunk`` queries at a time, so
    the memory beyond the matrix itself is that of one chunk of rows.
    """
    similarity = _to_numpy(similarity)
    query_pids, gallery_pids = _to_numpy(query_pids).ravel(), _to_numpy(gallery_pids).ravel()
    if similarity.ndim != 2 or similarity.shape != (len(query_pids), len(gallery_pids)):
        raise ValueError(
            f"similarity has shape {similarity.shape}, expected ({len(query_pids)}, {len(gallery_pids)})"
        )
    if len(query_pids) == 0 or len(gallery_pids) == 0:
        raise ValueError("retrieval_metrics needs at least one query and one gallery item")
    stats = chunked_query_stats(similarity, query_pids, gallery_pids, chunk)
    found = stats["first_hit"] > 0
    result = {f"R{k}": float(100.0 * np.mean(found & (stats["first_hit"] <= k))) for k in (1, 5, 10)}
    result["mAP"] = float(100.0 * np.mean(stats["ap"]))
    result["mINP"] = float(100.0 * np.mean(stats["inp"]))
    return result


def chunked_query_stats(similarity: np.ndarray, query_pids: np.ndarray, gallery_pids: np.ndarray,
                        chunk: int = 512) -> dict[str, np.ndarray]:
    """:func:`per_query_stats` of every query, ``chunk`` rows at a time (bounded memory)."""
    parts = [per_query_stats(similarity[start:start + chunk], query_pids[start:start + chunk], gallery_pids)
             for start in range(0, len(query_pids), chunk)]
    return {key: np.concatenate([p[key] for p in parts]) for key in ("first_hit", "ap", "inp")}


def top_k(similarity, k: int = 10, chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Indices and scores of each row's ``k`` best columns, best first (ties: lower index)."""
    similarity = _to_numpy(similarity)
    k = min(k, similarity.shape[1])
    indices = np.empty((len(similarity), k), dtype=np.int64)
    for start in range(0, len(similarity), chunk):
        rows = similarity[start:start + chunk]
        indices[start:start + chunk] = np.argsort(-rows, axis=1, kind="stable")[:, :k]
    return indices, np.take_along_axis(similarity, indices, axis=1)


def chance_r1(query_pids, gallery_pids) -> float:
    """Expected R@1 (percent) of a random ranking: the mean share of correct gallery items."""
    query_pids, gallery_pids = _to_numpy(query_pids).ravel(), _to_numpy(gallery_pids).ravel()
    values, counts = np.unique(gallery_pids, return_counts=True)
    per_pid = dict(zip(values.tolist(), counts.tolist()))
    return float(100.0 * np.mean([per_pid.get(p, 0) for p in query_pids.tolist()]) / len(gallery_pids))


def format_metrics_table(rows: dict[str, dict[str, float]]) -> str:
    """A Markdown table, one row per named result."""
    header = "| model | " + " | ".join(METRIC_NAMES) + " |"
    rule = "|---|" + "---:|" * len(METRIC_NAMES)
    lines = [header, rule]
    for name, metrics in rows.items():
        lines.append(f"| {name} | " + " | ".join(f"{metrics[m]:.2f}" for m in METRIC_NAMES) + " |")
    return "\n".join(lines)
