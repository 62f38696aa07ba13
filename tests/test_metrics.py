import numpy as np
import pytest
import torch

from mia.core.evaluation.metrics import chance_r1, retrieval_metrics


def brute_force(similarity, query_pids, gallery_pids):
    """Textbook definitions, one query at a time, no vectorisation."""
    r = {1: [], 5: [], 10: []}
    aps, inps = [], []
    for q in range(similarity.shape[0]):
        ranking = sorted(range(similarity.shape[1]), key=lambda g: (-similarity[q, g], g))
        correct = [gallery_pids[g] == query_pids[q] for g in ranking]
        hits = [i + 1 for i, c in enumerate(correct) if c]
        for k in r:
            r[k].append(bool(hits) and hits[0] <= k)
        if hits:
            aps.append(sum((n + 1) / rank for n, rank in enumerate(hits)) / len(hits))
            inps.append(len(hits) / hits[-1])
        else:
            aps.append(0.0)
            inps.append(0.0)
    return {"R1": 100 * np.mean(r[1]), "R5": 100 * np.mean(r[5]), "R10": 100 * np.mean(r[10]),
            "mAP": 100 * np.mean(aps), "mINP": 100 * np.mean(inps)}


@pytest.mark.parametrize("seed", range(6))
def test_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    queries, gallery = rng.integers(1, 40), rng.integers(1, 30)
    gallery_pids = rng.integers(0, 6, gallery)
    query_pids = rng.integers(0, 7, queries)  # pid 6 never in the gallery: a miss
    similarity = rng.normal(size=(queries, gallery)).round(1)  # rounding makes ties
    got = retrieval_metrics(similarity, query_pids, gallery_pids, chunk=3)
    want = brute_force(similarity, query_pids, gallery_pids)
    for key in want:
        assert got[key] == pytest.approx(want[key], abs=1e-9), key


def test_perfect_and_known_values():
    gallery = np.array([1, 1, 2, 3])
    queries = np.array([1, 2])
    similarity = np.array([[0.9, 0.1, 0.5, 0.0], [0.8, 0.7, 0.6, 0.0]])
    m = retrieval_metrics(similarity, queries, gallery)
    # query 1: ranks 1 (hit), 3 (hit) -> AP (1 + 2/3)/2, INP 2/3; query 2: hit at rank 3 -> AP 1/3, INP 1/3
    assert m["R1"] == 50.0 and m["R5"] == 100.0
    assert m["mAP"] == pytest.approx(100 * ((1 + 2 / 3) / 2 + 1 / 3) / 2)
    assert m["mINP"] == pytest.approx(100 * (2 / 3 + 1 / 3) / 2)


def test_accepts_torch_and_matches_numpy():
    rng = np.random.default_rng(0)
    sim = rng.normal(size=(50, 20)).astype(np.float32)
    qp, gp = rng.integers(0, 5, 50), rng.integers(0, 5, 20)
    assert retrieval_metrics(torch.from_numpy(sim), torch.from_numpy(qp), torch.from_numpy(gp)) == \
        retrieval_metrics(sim, qp, gp)


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="expected"):
        retrieval_metrics(np.zeros((3, 4)), np.zeros(3), np.zeros(5))


def test_chance_r1_is_the_mean_share_of_correct_items():
    # query pid 1 has 2 of 4 correct, pid 2 has 1 of 4, pid 9 none
    assert chance_r1([1, 2, 9], [1, 1, 2, 3]) == pytest.approx(100 * (0.5 + 0.25 + 0) / 3)


def test_top_k_is_best_first_with_stable_ties():
    from mia.core.evaluation.metrics import top_k

    sim = np.array([[0.1, 0.9, 0.5, 0.9], [0.3, 0.2, 0.1, 0.0]])
    indices, scores = top_k(sim, 3, chunk=1)
    assert indices.tolist() == [[1, 3, 2], [0, 1, 2]]
    assert scores.tolist() == [[0.9, 0.9, 0.5], [0.3, 0.2, 0.1]]
    assert top_k(sim, 10)[0].shape == (2, 4)
