"""Confidence intervals for retrieval metrics, and verdicts on differences between models.

Two sources of uncertainty, two levels of resampling (a hierarchical bootstrap):

* **The test sample.**  Queries of one person are not independent: they describe the same
  images, and a person who is easy (or has a look-alike in the gallery) is easy for all of
  their captions.  So people are resampled with replacement, each bringing all of their
  queries, and a replicate's metric is the mean over the resampled queries.  The gallery
  stays the whole split: it is the search set of the task, the same for every query, and
  duplicating gallery images would change the task (a doubled distractor pulls twice)
  rather than sample it.  A person's images still vary with the person, through their
  queries' outcomes.
* **Training seeds.**  Each replicate also resamples the seeds of each model.

A difference between two models is paired on the queries: the same resampled people
score both.  The interval is the central 95% of the replicates; the verdict is
``better`` or ``worse`` when the interval excludes zero, else ``not resolved``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from mia.core.base import atomic
from mia.core.evaluation.metrics import chunked_query_stats

REPLICATES = 2000
LEVEL = 0.95
OUTCOME_METRICS = ("R1", "R5", "R10", "mAP", "mINP", "twin")


@dataclass
class QueryOutcomes:
    """Per-query results of one model on one split: ``person[q]`` and, per metric, the
    query's value in percent (NaN where a metric does not apply, e.g. a query whose person
    has no twin)."""

    person: np.ndarray
    values: dict[str, np.ndarray]

    def save(self, path: str | Path) -> None:
        with atomic.atomic_path(path) as tmp:
            with open(tmp, "wb") as handle:
                np.savez(handle, person=self.person, **self.values)

    @classmethod
    def load(cls, path: str | Path) -> "QueryOutcomes":
        with np.load(path, allow_pickle=False) as data:
            return cls(data["person"], {k: data[k] for k in data.files if k != "person"})

    def mean(self, metric: str) -> float:
        values = self.values[metric]
        valid = ~np.isnan(values)
        return float(values[valid].mean()) if valid.any() else float("nan")


def twin_outcomes(similarity: np.ndarray, query_pids: np.ndarray, gallery_pids: np.ndarray,
                  twins: Sequence[tuple[int, int]]) -> np.ndarray:
    """Per query, 100 if the described person's best image outscores their twin's best image,
    0 if not (ties count as not), NaN when the person has no twin in the gallery."""
    partner: dict[int, int] = {}
    for a, b in twins:
        partner.setdefault(a, b)
        partner.setdefault(b, a)
    present = set(gallery_pids.tolist())
    result = np.full(len(query_pids), np.nan)
    for person in np.unique(query_pids):
        twin = partner.get(int(person))
        if twin is None or twin not in present or int(person) not in present:
            continue
        rows = np.flatnonzero(query_pids == person)
        own = similarity[np.ix_(rows, np.flatnonzero(gallery_pids == person))].max(axis=1)
        other = similarity[np.ix_(rows, np.flatnonzero(gallery_pids == twin))].max(axis=1)
        result[rows] = np.where(own > other, 100.0, 0.0)
    return result


def query_outcomes(similarity, query_pids, gallery_pids, twins: Sequence[tuple[int, int]] = (),
                   chunk: int = 512) -> QueryOutcomes:
    """The per-query form of :func:`mia.core.evaluation.metrics.retrieval_metrics` (same numbers on average)."""
    similarity, query_pids, gallery_pids = np.asarray(similarity), np.asarray(query_pids), np.asarray(gallery_pids)
    stats = chunked_query_stats(similarity, query_pids, gallery_pids, chunk)
    hit = stats["first_hit"]
    values = {f"R{k}": 100.0 * ((hit > 0) & (hit <= k)) for k in (1, 5, 10)}
    values.update(mAP=100.0 * stats["ap"], mINP=100.0 * stats["inp"],
                  twin=twin_outcomes(similarity, query_pids, gallery_pids, twins))
    return QueryOutcomes(query_pids.astype(np.int64), values)


@dataclass(frozen=True)
class Interval:
    estimate: float
    low: float
    high: float

    @property
    def verdict(self) -> str:
        if self.low > 0:
            return "better"
        if self.high < 0:
            return "worse"
        return "not resolved"

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2

    def to_dict(self) -> dict:
        return {"estimate": self.estimate, "low": self.low, "high": self.high}


class PeopleBootstrap:
    """Replicate weights over the people of a query list, shared by every model scored on it
    (that sharing is what makes a comparison paired)."""

    def __init__(self, person: np.ndarray, replicates: int = REPLICATES, seed: int = 0):
        self.person = np.asarray(person)
        people, self.index = np.unique(self.person, return_inverse=True)
        self.rng = np.random.default_rng(seed)
        self.weights = self.rng.multinomial(len(people), np.full(len(people), 1.0 / len(people)),
                                            size=replicates).astype(np.float64)  # [B, P]
        self.replicates = replicates

    def _per_person(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        valid = ~np.isnan(values)
        sums = np.bincount(self.index[valid], weights=values[valid], minlength=self.weights.shape[1])
        counts = np.bincount(self.index[valid], minlength=self.weights.shape[1]).astype(np.float64)
        return sums, counts

    def replicate_means(self, runs: Sequence[QueryOutcomes], metric: str) -> np.ndarray:
        """``[B]`` metric means: per replicate, the resampled people's queries, averaged
        over a resample of the runs (seeds)."""
        per_run = []
        for run in runs:
            if run.person.shape != self.person.shape or not np.array_equal(run.person, self.person):
                raise ValueError("runs compared by the bootstrap must score the same queries")
            sums, counts = self._per_person(run.values[metric])
            per_run.append((self.weights @ sums) / np.maximum(self.weights @ counts, 1e-12))
        per_run = np.stack(per_run)  # [R, B]
        chosen = self.rng.integers(0, len(runs), size=(self.replicates, len(runs)))  # seeds, per replicate
        return np.take_along_axis(per_run.T, chosen, axis=1).mean(axis=1)


def _interval(estimate: float, replicates: np.ndarray) -> Interval:
    replicates = replicates[~np.isnan(replicates)]
    if not len(replicates):
        return Interval(estimate, float("nan"), float("nan"))
    tail = (1 - LEVEL) / 2 * 100
    low, high = np.percentile(replicates, [tail, 100 - tail])
    return Interval(float(estimate), float(low), float(high))


def metric_interval(runs: Sequence[QueryOutcomes], metric: str, bootstrap: PeopleBootstrap | None = None) -> Interval:
    """Mean over runs (seeds) of ``metric`` with its 95% interval."""
    bootstrap = bootstrap or PeopleBootstrap(runs[0].person)
    estimate = float(np.mean([run.mean(metric) for run in runs]))
    return _interval(estimate, bootstrap.replicate_means(runs, metric))


def outcome_intervals(outcomes: QueryOutcomes, metrics: Sequence[str] = OUTCOME_METRICS) -> dict[str, Interval]:
    """95% intervals of one model's metrics on one split (the test sample's uncertainty);
    twin accuracy only where the data set has twins."""
    bootstrap = PeopleBootstrap(outcomes.person)
    return {m: metric_interval([outcomes], m, bootstrap) for m in metrics
            if m in outcomes.values and not np.isnan(outcomes.values[m]).all()}


def format_intervals(intervals: dict[str, Interval], people: int) -> str:
    cells = ", ".join(f"{m} [{i.low:.2f}, {i.high:.2f}]" for m, i in intervals.items() if m != "twin")
    line = f"95% intervals (bootstrap over {people} people): {cells}"
    twin = intervals.get("twin")
    if twin is not None:
        line += f"; twin accuracy {twin.estimate:.2f} [{twin.low:.2f}, {twin.high:.2f}]"
    return line


def standard_errors(outcomes: QueryOutcomes, metrics: Sequence[str], replicates: int = 500) -> dict[str, float]:
    """``{"R1_se": ...}``: the spread of each metric over a bootstrap of people (cheap enough
    to log for every epoch's validation)."""
    bootstrap = PeopleBootstrap(outcomes.person, replicates=replicates)
    return {f"{m}_se": float(np.std(bootstrap.replicate_means([outcomes], m))) for m in metrics}


def paired_difference(runs_a: Sequence[QueryOutcomes], runs_b: Sequence[QueryOutcomes], metric: str,
                      bootstrap: PeopleBootstrap | None = None) -> Interval:
    """``a - b`` in ``metric`` (mean over seeds) with its 95% interval, paired on the queries."""
    bootstrap = bootstrap or PeopleBootstrap(runs_a[0].person)
    estimate = np.mean([r.mean(metric) for r in runs_a]) - np.mean([r.mean(metric) for r in runs_b])
    return _interval(float(estimate), bootstrap.replicate_means(runs_a, metric)
                     - bootstrap.replicate_means(runs_b, metric))
