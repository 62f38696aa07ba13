"""``mia compare``: two checkpoints on the same queries, with a paired interval per metric.

Both models score every query of one split; their per-query results are resampled
together (see :mod:`mia.core.evaluation.intervals`), so the interval of the difference is far
narrower than the two models' own intervals would suggest: the queries that are hard
for one are mostly hard for the other.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mia.core.evaluation.intervals import OUTCOME_METRICS, PeopleBootstrap, paired_difference
from mia.core.modeling.checkpoint import load_checkpoint
from mia.core.base.errors import MiaError
from mia.core.evaluation.evaluate import evaluate_checkpoint


def checkpoint_of(run_or_checkpoint: str | Path) -> Path:
    """A run directory means its ``best.pt``."""
    path = Path(run_or_checkpoint)
    if path.is_dir():
        if not (path / "best.pt").is_file():
            raise MiaError(f"{path}: a directory without best.pt; give a run directory or a checkpoint file")
        return path / "best.pt"
    return path


def common_data(first: Path, second: Path, data: str | None) -> str:
    """``data``, else the data set both were trained on (they must agree)."""
    if data:
        return data
    trained = [load_checkpoint(path)["config"].get("data") for path in (first, second)]
    if trained[0] != trained[1]:
        raise MiaError(f"{first} was trained on '{trained[0]}' and {second} on '{trained[1]}': "
                       "pass --data to compare them on the same queries")
    return trained[0]


def compare_checkpoints(first, second, data: str | None = None, split: str = "test", device: str = "auto",
                        chunk: int | None = None, workers: int | None = None, show_progress: bool = True) -> dict:
    first, second = checkpoint_of(first), checkpoint_of(second)
    data = common_data(first, second, data)
    evaluations = [evaluate_checkpoint(path, data, split, device, chunk, workers, show_progress=show_progress)
                   for path in (first, second)]
    outcomes = [e.outcomes for e in evaluations]
    if not np.array_equal(outcomes[0].person, outcomes[1].person):
        raise MiaError(f"{first} and {second} did not score the same queries of '{data}'")
    bootstrap = PeopleBootstrap(outcomes[0].person)
    metrics = [m for m in OUTCOME_METRICS if not np.isnan(outcomes[0].values[m]).all()]
    differences = {}
    for metric in metrics:
        interval = paired_difference([outcomes[0]], [outcomes[1]], metric, bootstrap)
        differences[metric] = {**interval.to_dict(), "verdict": interval.verdict}
    return {"data": data, "split": split, "queries": len(outcomes[0].person),
            "people": len(np.unique(outcomes[0].person)),
            "models": [{"checkpoint": str(path), **{m: o.mean(m) for m in metrics}}
                       for path, o in zip((first, second), outcomes)],
            "differences": differences}


def comparison_table(result: dict) -> str:
    first, second = result["models"]
    lines = ["| metric | A | B | A - B | 95% interval | verdict |", "|---|---:|---:|---:|---|---|"]
    for metric, d in result["differences"].items():
        lines.append(f"| {metric} | {first[metric]:.2f} | {second[metric]:.2f} | {d['estimate']:+.2f} | "
                     f"[{d['low']:+.2f}, {d['high']:+.2f}] | {d['verdict']} |")
    return "\n".join(lines)
