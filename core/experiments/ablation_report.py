"""What ``mia ablate`` reports: per combination the mean and spread over seeds with a 95%
interval, and against the first combination (the baseline) the paired difference with
its interval and a verdict, for R@1, mAP and twin accuracy (see :mod:`mia.core.evaluation.intervals`).

Everything is recomputed from the runs' saved per-query results, so a resumed ablation
reports exactly what an uninterrupted one would.
"""

from __future__ import annotations

import statistics
from pathlib import Path

import numpy as np

from mia.core.base import atomic
from mia.core.evaluation.intervals import Interval, PeopleBootstrap, QueryOutcomes, metric_interval, paired_difference
from mia.core.evaluation.metrics import METRIC_NAMES
from mia.core.experiments.plots import grouped_bar_chart

OUTCOMES_FILE = "test-outcomes.npz"
#: the metrics that get intervals and verdicts
COMPARED = ("R1", "mAP", "twin")


def _runs_of(state: dict, name: str) -> list[dict]:
    return [r for r in state["runs"] if r["combination"] == name]


def arm_outcomes(state: dict, out: Path, name: str) -> list[QueryOutcomes]:
    """The per-query test outcomes of one arm of the ablation in ``out``, in seed order."""
    return [QueryOutcomes.load(out / r["outcomes"]) for r in sorted(_runs_of(state, name), key=lambda r: r["seed"])]


def differences(runs: list[QueryOutcomes], others: list[QueryOutcomes]) -> dict[str, Interval]:
    """``runs`` minus ``others`` (the same queries, at the same seeds in the same order):
    each compared metric's paired difference, from one bootstrap over people and seeds."""
    bootstrap = PeopleBootstrap(others[0].person)
    return {m: paired_difference(runs, others, m, bootstrap)
            for m in COMPARED if not np.isnan(others[0].values[m]).all()}


def summarize(state: dict) -> dict[str, dict[str, tuple[float, float]]]:
    """combination -> field -> (mean, std over seeds) for metrics, time and parameters."""
    summary = {}
    for name in state["settings"]["combinations"]:
        runs = _runs_of(state, name)
        if not runs:
            continue
        summary[name] = {}
        for field in (*METRIC_NAMES, "twin", "train_seconds", "parameters"):
            values = [float(r[field]) for r in runs if r.get(field) is not None]
            if values and not any(np.isnan(values)):
                summary[name][field] = (statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0)
        summary[name]["seeds"] = (len(runs), 0.0)
    return summary


def intervals(state: dict, out: Path) -> dict:
    """``{"combinations": {name: {metric: Interval}}, "versus": {name: {metric: Interval}}}``:
    each combination's metrics, and each one minus the baseline, paired on the queries."""
    outcomes = {name: [QueryOutcomes.load(out / r["outcomes"]) for r in _runs_of(state, name)]
                for name in state["settings"]["combinations"] if _runs_of(state, name)}
    if not outcomes:
        return {"combinations": {}, "versus": {}}
    first = next(iter(outcomes.values()))[0]
    bootstrap = PeopleBootstrap(first.person)
    usable = [m for m in COMPARED if not np.isnan(first.values[m]).all()]
    result = {"combinations": {name: {m: metric_interval(runs, m, bootstrap) for m in usable}
                               for name, runs in outcomes.items()}, "versus": {}}
    baseline = state["settings"]["combinations"][0]
    if baseline in outcomes:
        result["versus"] = {name: {m: paired_difference(runs, outcomes[baseline], m, bootstrap) for m in usable}
                            for name, runs in outcomes.items() if name != baseline}
    return result


def _cell(interval: Interval, signed: bool = False) -> str:
    sign = "+" if signed else ""
    return f"{interval.estimate:{sign}.2f} [{interval.low:{sign}.2f}, {interval.high:{sign}.2f}]"


def arm_label(state: dict) -> str:
    """What the ablation's arms are: alignment combinations, or variants of other settings."""
    return "variant" if "variants" in state["settings"] else "alignments"


def markdown_table(state: dict, found: dict | None = None) -> str:
    """Mean ± std over seeds per metric; with ``found`` (from :func:`intervals`) the 95%
    intervals, twin accuracy and each combination against the baseline."""
    summary = summarize(state)
    split = state["runs"][0]["split"] if state["runs"] else "test"
    arms = arm_label(state)
    lines = [f"| {arms} ({split}, mean ± std) | seeds | " + " | ".join(METRIC_NAMES)
             + " | train time (s) | parameters (M) |", "|---|---:|" + "---:|" * (len(METRIC_NAMES) + 2)]
    for name, fields in summary.items():
        cells = [f"{fields[m][0]:.2f} ± {fields[m][1]:.2f}" for m in METRIC_NAMES]
        cells += [f"{fields['train_seconds'][0]:.0f}", f"{fields['parameters'][0] / 1e6:.2f}"]
        lines.append(f"| {name} | {int(fields['seeds'][0])} | " + " | ".join(cells) + " |")
    if not found or not found["combinations"]:
        return "\n".join(lines)
    metrics = list(next(iter(found["combinations"].values())))
    lines += ["", f"| {arms} (95% interval over people and seeds) | " + " | ".join(metrics) + " |",
              "|---|" + "---:|" * len(metrics)]
    for name, by_metric in found["combinations"].items():
        lines.append(f"| {name} | " + " | ".join(_cell(by_metric[m]) for m in metrics) + " |")
    if found["versus"]:
        baseline = state["settings"]["combinations"][0]
        lines += ["", f"| minus {baseline} | " + " | ".join(f"{m}: difference [95% interval], verdict" for m in metrics)
                  + " |", "|---|" + "---|" * len(metrics)]
        for name, by_metric in found["versus"].items():
            lines.append(f"| {name} | " + " | ".join(f"{_cell(by_metric[m], True)} {by_metric[m].verdict}"
                                                      for m in metrics) + " |")
    return "\n".join(lines)


def report_dict(found: dict) -> dict:
    """The intervals as plain data for ``ablation.json``."""
    return {"combinations": {name: {m: i.to_dict() for m, i in by.items()} for name, by in found["combinations"].items()},
            "versus": {name: {m: {**i.to_dict(), "verdict": i.verdict} for m, i in by.items()}
                       for name, by in found["versus"].items()}}


def write_reports(state: dict, out: Path) -> dict:
    """``ablation.md`` and ``ablation.png`` (bars with 95% intervals); returns the intervals."""
    if not state["runs"]:
        return {}
    found = intervals(state, out)
    per_run = [f"| {arm_label(state)} | seed | " + " | ".join(METRIC_NAMES) + " | twin | best epoch | R1 of each alignment alone |",
               "|---|---:|" + "---:|" * (len(METRIC_NAMES) + 2) + "---|"]
    for run in state["runs"]:
        alone = ", ".join(f"{name} {r1:.2f}" for name, r1 in run.get("components", {}).items()) or "-"
        twin = run.get("twin")
        per_run.append(f"| {run['combination']} | {run['seed']} | " + " | ".join(f"{run[m]:.2f}" for m in METRIC_NAMES)
                       + f" | {'-' if twin is None or np.isnan(twin) else f'{twin:.2f}'} | {run['best_epoch']} | {alone} |")
    atomic.write_text(out / "ablation.md", f"# Ablation\n\n{markdown_table(state, found)}\n\n## Runs\n\n"
                      + "\n".join(per_run) + "\n")
    metrics = [m for m in COMPARED if found["combinations"] and m in next(iter(found["combinations"].values()))]
    series = {name: [(by[m].estimate, by[m].low, by[m].high) for m in metrics]
              for name, by in found["combinations"].items()}
    grouped_bar_chart(out / "ablation.png", f"Ablation on {state['settings']['config']['data']} "
                      f"({state['runs'][0]['split']}, mean over seeds, 95% intervals)", metrics, series)
    return found
