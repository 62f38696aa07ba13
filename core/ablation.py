"""``mia ablate``: train every alignment combination with the same data, seeds, budget and
schedule, evaluate each on the test split, and report mean +/- std over seeds.

Results go to ``ablation.json`` after every run (atomically), so an interrupted ablation
resumes where it stopped: finished runs are skipped, a half-trained run continues from
its ``last.pt``.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import replace
from pathlib import Path

from mia.core import atomic
from mia.core.config import RUN_ONLY_FIELDS, TrainConfig
from mia.core.errors import MiaError
from mia.core.evaluate import evaluate_checkpoint
from mia.core.metrics import METRIC_NAMES
from mia.core.model import canonical_alignments
from mia.core.outputs import check_ablation_dir
from mia.core.plots import grouped_bar_chart
from mia.core.records import load_dataset
from mia.core.train import train

REPORT_SPLIT_PREFERENCE = ("test", "val")


def combination_name(alignments: list[str]) -> str:
    return "+".join(alignments)


def _settings(base: TrainConfig, combos: list[list[str]], seeds: list[int]) -> dict:
    """What must match for a saved ablation to be resumed (run-only fields excluded)."""
    config = {k: v for k, v in base.to_dict().items() if k not in RUN_ONLY_FIELDS + ("align", "seed")}
    return {"config": config, "combinations": [combination_name(c) for c in combos], "seeds": seeds}


def _restricted(weights: dict[str, float], combo: list[str]) -> dict[str, float]:
    """Per-alignment weights restricted to this combination's alignments."""
    return {name: w for name, w in weights.items() if canonical_alignments([name])[0] in combo}


def run_ablation(base: TrainConfig, combos: list[list[str]], seeds: list[int], out: str | Path,
                 log=print) -> dict:
    out = Path(out)
    combos = [canonical_alignments(c) for c in combos]
    if base.stages not in (None, "auto"):
        raise MiaError("mia ablate: --stages NAME:EPOCHS fixes the alignments; use --stages auto (or none)")
    if len({combination_name(c) for c in combos}) != len(combos):
        raise MiaError("mia ablate: the same --align combination is given twice")
    settings = _settings(base, combos, seeds)
    results_path = out / "ablation.json"
    state = {"settings": settings, "runs": []}
    check_ablation_dir(out)
    if results_path.exists():
        state = _read_state(results_path)
        if state["settings"] != settings:
            raise MiaError(f"--out {out} holds an ablation with other settings; choose another --out")
    done = {(r["combination"], r["seed"]) for r in state["runs"]}
    report_split = _report_split(base.data)
    total = len(combos) * len(seeds)
    for n, (combo, seed) in enumerate(((c, s) for c in combos for s in seeds), start=1):
        name = combination_name(combo)
        if (name, seed) in done:
            log(f"[{n}/{total}] {name} seed {seed}: done earlier, skipped")
            continue
        run_dir = out / "runs" / f"{name}-seed{seed}"
        config = replace(base, align=combo, seed=seed, out=str(run_dir), weights=_restricted(base.weights, combo),
                         loss_weights=_restricted(base.loss_weights, combo))
        resume = (run_dir / "last.pt").exists()
        log(f"[{n}/{total}] {name} seed {seed}: {'resuming' if resume else 'training'} in {run_dir}")
        result = train(config, resume=resume, log=log)
        evaluation = evaluate_checkpoint(run_dir / "best.pt", None, report_split, base.device, base.eval_chunk,
                                         base.workers, show_progress=not base.quiet, components=True)
        state["runs"].append({
            "combination": name, "alignments": combo, "seed": seed, "split": report_split,
            **evaluation.metrics,
            "components": {name: m["R1"] for name, m in evaluation.components.items()},
            "best_epoch": result.best["epoch"],
            "train_seconds": round(sum(r["train_seconds"] for r in result.history), 1),
            "parameters": sum(p.numel() for p in evaluation.model.parameters()),
        })
        atomic.write_text(results_path, json.dumps(state, indent=2))
        write_reports(state, out)
    write_reports(state, out)
    return state


def _read_state(path: Path) -> dict:
    """A saved ablation, or one line saying why it cannot be resumed."""
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise MiaError(f"{path}: not a readable ablation state ({exc}); choose another --out") from None
    if not (isinstance(state, dict) and isinstance(state.get("settings"), dict) and isinstance(state.get("runs"), list)
            and all(isinstance(r, dict) and {"combination", "seed"} <= set(r) for r in state["runs"])):
        raise MiaError(f"{path}: not a mia ablation state (expected settings and runs); choose another --out")
    return state


def _report_split(data_spec: str) -> str:
    dataset = load_dataset(data_spec)
    return next(s for s in REPORT_SPLIT_PREFERENCE if dataset.has_split(s))


def summarize(state: dict) -> dict[str, dict[str, tuple[float, float]]]:
    """combination -> field -> (mean, std over seeds) for metrics, time and parameters."""
    summary = {}
    for name in state["settings"]["combinations"]:
        runs = [r for r in state["runs"] if r["combination"] == name]
        if not runs:
            continue
        summary[name] = {}
        for field in (*METRIC_NAMES, "train_seconds", "parameters"):
            values = [float(r[field]) for r in runs]
            summary[name][field] = (statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0)
        summary[name]["seeds"] = (len(runs), 0.0)
    return summary


def markdown_table(state: dict) -> str:
    summary = summarize(state)
    split = state["runs"][0]["split"] if state["runs"] else "test"
    lines = [f"| alignments ({split}, mean ± std) | seeds | " + " | ".join(METRIC_NAMES) + " | train time (s) | parameters (M) |",
             "|---|---:|" + "---:|" * (len(METRIC_NAMES) + 2)]
    for name, fields in summary.items():
        cells = [f"{fields[m][0]:.2f} ± {fields[m][1]:.2f}" for m in METRIC_NAMES]
        cells.append(f"{fields['train_seconds'][0]:.0f}")
        cells.append(f"{fields['parameters'][0] / 1e6:.2f}")
        lines.append(f"| {name} | {int(fields['seeds'][0])} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_reports(state: dict, out: Path) -> None:
    if not state["runs"]:
        return
    table = markdown_table(state)
    per_run = ["| alignments | seed | " + " | ".join(METRIC_NAMES) + " | best epoch | R1 of each alignment alone |",
               "|---|---:|" + "---:|" * (len(METRIC_NAMES) + 1) + "---|"]
    for run in state["runs"]:
        alone = ", ".join(f"{name} {r1:.2f}" for name, r1 in run.get("components", {}).items()) or "-"
        per_run.append(f"| {run['combination']} | {run['seed']} | "
                       + " | ".join(f"{run[m]:.2f}" for m in METRIC_NAMES) + f" | {run['best_epoch']} | {alone} |")
    atomic.write_text(out / "ablation.md", f"# Ablation\n\n{table}\n\n## Runs\n\n" + "\n".join(per_run) + "\n")
    summary = summarize(state)
    series = {name: [fields[m] for m in METRIC_NAMES] for name, fields in summary.items()}
    grouped_bar_chart(out / "ablation.png", f"Alignment ablation on {state['settings']['config']['data']} "
                      f"({state['runs'][0]['split']}, mean ± std over seeds)", list(METRIC_NAMES), series)
