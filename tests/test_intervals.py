"""The hierarchical bootstrap and twin accuracy on constructed cases with known answers."""

import numpy as np
import pytest

from mia.core.evaluation.intervals import (PeopleBootstrap, QueryOutcomes, metric_interval, paired_difference, query_outcomes,
                                twin_outcomes)
from mia.core.evaluation.metrics import retrieval_metrics


def outcomes(person, r1) -> QueryOutcomes:
    return QueryOutcomes(np.asarray(person), {"R1": np.asarray(r1, dtype=float)})


def test_people_are_resampled_with_all_their_queries():
    # person 1: three hits, person 2: one miss.  Resampling people gives 100, 75 or 0;
    # resampling queries one by one would also give 50 and 25.
    run = outcomes([1, 1, 1, 2], [100, 100, 100, 0])
    means = PeopleBootstrap(run.person, replicates=500, seed=1).replicate_means([run], "R1")
    assert set(np.round(means, 6)) == {0.0, 75.0, 100.0}


def test_identical_models_are_not_resolved_and_a_clear_gap_is():
    rng = np.random.default_rng(0)
    person = np.repeat(np.arange(60), 4)
    a = outcomes(person, 100.0 * (rng.random(240) < 0.6))
    assert paired_difference([a], [a], "R1").verdict == "not resolved"
    better = outcomes(person, np.maximum(a.values["R1"], 100.0 * (rng.random(240) < 0.5)))
    difference = paired_difference([better], [a], "R1")
    assert difference.verdict == "better" and difference.low > 0
    assert paired_difference([a], [better], "R1").verdict == "worse"


def draw_pair(rng, true_gap: float, people: int = 80, per_person: int = 4):
    """Two models on one test sample: person difficulty shared, model B a fixed gap below A."""
    difficulty = rng.normal(0, 1.0, people)
    person = np.repeat(np.arange(people), per_person)
    base = 1 / (1 + np.exp(-(0.3 + np.repeat(difficulty, per_person))))
    noise = rng.random(len(person))
    a = 100.0 * (noise < base)
    b = 100.0 * (noise < base - true_gap)  # paired: the same query is harder for both
    return outcomes(person, a), outcomes(person, b), base


def test_intervals_cover_a_known_difference_at_about_the_nominal_rate():
    rng = np.random.default_rng(7)
    true_gap = 0.08
    covered, draws = 0, 200
    for draw in range(draws):
        a, b, base = draw_pair(rng, true_gap)
        expected = 100 * np.mean(np.minimum(base, true_gap))  # P(noise in [base - gap, base))
        interval = paired_difference([a], [b], "R1", PeopleBootstrap(a.person, replicates=400, seed=draw))
        covered += interval.low <= expected <= interval.high
    assert 0.88 <= covered / draws <= 0.995


def test_seed_variance_widens_the_interval():
    rng = np.random.default_rng(3)
    person = np.repeat(np.arange(50), 4)
    steady = [outcomes(person, 100.0 * (rng.random(200) < 0.5)) for _ in range(3)]
    shared = steady[0].values["R1"]
    noisy = [outcomes(person, shared), outcomes(person, np.maximum(shared, 100.0 * (rng.random(200) < 0.6))),
             outcomes(person, shared * (rng.random(200) < 0.3))]
    one_seed = metric_interval(steady[:1], "R1", PeopleBootstrap(person, seed=0))
    three_noisy = metric_interval(noisy, "R1", PeopleBootstrap(person, seed=0))
    assert three_noisy.half_width > one_seed.half_width


def test_query_outcomes_average_to_the_metrics():
    rng = np.random.default_rng(1)
    gallery_pids = np.repeat(np.arange(20), 3)
    query_pids = np.repeat(np.arange(20), 2)
    similarity = rng.normal(size=(40, 60)) + 2.0 * (query_pids[:, None] == gallery_pids[None, :])
    result = query_outcomes(similarity, query_pids, gallery_pids)
    metrics = retrieval_metrics(similarity, query_pids, gallery_pids)
    for name in ("R1", "R5", "R10", "mAP", "mINP"):
        assert result.mean(name) == pytest.approx(metrics[name])


def test_twin_accuracy_by_hand():
    # gallery: person 1 (two images), person 2 = 1's twin (one image), person 3 (no twin)
    gallery_pids = np.array([1, 1, 2, 3])
    query_pids = np.array([1, 1, 2, 3])
    similarity = np.array([
        [0.1, 0.9, 0.5, 0.0],   # person 1: best own 0.9 > twin 0.5 -> right
        [0.2, 0.3, 0.4, 0.0],   # person 1: best own 0.3 < twin 0.4 -> wrong
        [0.6, 0.1, 0.6, 0.9],   # person 2: own 0.6 ties twin's best 0.6 -> wrong (ties count as not)
        [0.0, 0.0, 0.0, 1.0],   # person 3: no twin -> not counted
    ])
    result = twin_outcomes(similarity, query_pids, gallery_pids, [(1, 2)])
    assert result[:3].tolist() == [100.0, 0.0, 0.0] and np.isnan(result[3])
    run = QueryOutcomes(query_pids, {"twin": result})
    assert run.mean("twin") == pytest.approx(100 / 3)
