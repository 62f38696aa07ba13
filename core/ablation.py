"""``mia ablate``: train every alignment combination with the same data, seeds, budget and
schedule, and evaluate each on the test split (reports: :mod:`mia.core.ablation_report`).

Results go to ``ablation.json`` after every run (atomically) and each run's per-query
results beside its checkpoints, so an interrupted ablation resumes where it stopped
(finished runs are skipped, a half-trained run continues from its ``last.pt``) and its
intervals are computed from every run, old and new alike.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from mia.core import atomic
from mia.core.config import RUN_ONLY_FIELDS, TrainConfig
from mia.core.errors import MiaError
from mia.core.evaluate import evaluate_checkpoint
from mia.core.stages import canonical_alignments
from mia.core.outputs import check_ablation_dir
from mia.core.ablation_report import OUTCOMES_FILE, report_dict, write_reports
from mia.core.records import load_dataset
from mia.core.train import train

REPORT_SPLIT_PREFERENCE = ("test", "val")


def combination_name(alignments: list[str]) -> str:
    return "+".join(alignments)


def _settings(base: TrainConfig, combos: list[list[str]], seeds: list[int]) -> dict:
    """What must match for a saved ablation to be resumed (run-only fields excluded)."""
    config = {k: v for k, v in base.to_dict().items() if k not in RUN_ONLY_FIELDS + ("align", "seed")}
    return {"config": config, "combinations": [combination_name(c) for c in combos], "seeds": seeds}


def _extends(new: dict, saved: dict) -> bool:
    """Whether ``new`` is ``saved`` grown by seeds or by combinations after the saved ones
    (the baseline stays first): a narrow interval may need more seeds, and the runs done
    are reused instead of trained again."""
    saved_combos, saved_seeds = saved.get("combinations", []), saved.get("seeds", [])
    return (new["config"] == saved.get("config") and new["combinations"][:len(saved_combos)] == saved_combos
            and set(saved_seeds) <= set(new["seeds"]))


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
        if not _extends(settings, state["settings"]):
            raise MiaError(f"--out {out} holds an ablation with other settings (the same options may add seeds "
                           "or combinations after the saved ones); choose another --out")
        state["settings"] = settings
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
        evaluation.outcomes.save(run_dir / OUTCOMES_FILE)
        state["runs"].append({
            "combination": name, "alignments": combo, "seed": seed, "split": report_split,
            **evaluation.metrics, "twin": evaluation.outcomes.mean("twin"),
            "outcomes": (run_dir / OUTCOMES_FILE).relative_to(out).as_posix(),
            "components": {name: m["R1"] for name, m in evaluation.components.items()},
            "best_epoch": result.best["epoch"],
            "train_seconds": round(sum(r["train_seconds"] for r in result.history), 1),
            "parameters": sum(p.numel() for p in evaluation.model.parameters()),
        })
        _save(state, out)
    _save(state, out)
    return state


def _save(state: dict, out: Path) -> None:
    """``ablation.json`` (with the current intervals) and the reports, all rewritten atomically."""
    state["intervals"] = report_dict(write_reports(state, out)) if state["runs"] else {}
    atomic.write_text(out / "ablation.json", json.dumps(state, indent=2))


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
