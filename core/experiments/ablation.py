"""``mia ablate``: train every variant (an alignment combination, or any other setting)
with the same data, seeds, budget and schedule, and evaluate each on the test split
(reports: :mod:`mia.core.experiments.ablation_report`).

Results go to ``ablation.json`` after every run (atomically) and each run's per-query
results beside its checkpoints, so an interrupted ablation resumes where it stopped
(finished runs are skipped, a half-trained run continues from its ``last.pt``) and its
intervals are computed from every run, old and new alike.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

from mia.core.base import atomic
from mia.core.settings.config import RUN_ONLY_FIELDS, TrainConfig
from mia.core.base.errors import MiaError
from mia.core.evaluation.evaluate import evaluate_checkpoint
from mia.core.settings.stages import canonical_alignments
from mia.core.training.outputs import check_ablation_dir
from mia.core.experiments.ablation_report import OUTCOMES_FILE, report_dict, write_reports
from mia.core.data.records import load_dataset
from mia.core.training.train import train

REPORT_SPLIT_PREFERENCE = ("test", "val")


def combination_name(alignments: list[str]) -> str:
    return "+".join(alignments)


@dataclass(frozen=True)
class Variant:
    """One arm of an ablation: a name and the training settings it changes."""

    name: str
    changes: dict

    @classmethod
    def of_alignments(cls, alignments: list[str]) -> "Variant":
        return cls(combination_name(alignments), {"align": list(alignments)})


def _settings(base: TrainConfig, variants: list[Variant], seeds: list[int]) -> dict:
    """What must match for a saved ablation to be resumed (run-only fields excluded)."""
    varied = {key for v in variants for key in v.changes}
    config = {k: v for k, v in base.to_dict().items() if k not in RUN_ONLY_FIELDS + ("align", "seed", *varied)}
    settings = {"config": config, "combinations": [v.name for v in variants], "seeds": seeds}
    if varied != {"align"}:
        settings["variants"] = {v.name: v.changes for v in variants}
    return settings


def _extends(new: dict, saved: dict, base: TrainConfig) -> bool:
    """Whether ``new`` is ``saved`` grown by seeds or by combinations after the saved ones
    (the baseline stays first): a narrow interval may need more seeds, and the runs done
    are reused instead of trained again."""
    saved_combos, saved_seeds = saved.get("combinations", []), saved.get("seeds", [])
    return (_same_base(new["config"], saved.get("config", {}), base)
            and new["combinations"][:len(saved_combos)] == saved_combos
            and set(saved_seeds) <= set(new["seeds"])
            and all(new.get("variants", {}).get(n) == c for n, c in saved.get("variants", {}).items()))


def _same_base(new: dict, saved: dict, base: TrainConfig) -> bool:
    """Whether two grids' shared settings agree.  A setting that a new variant varies is
    absent from ``new``: the saved grid's value must then be ``base``'s (what the baseline
    trains with).  A setting absent from ``saved`` is a field added to mia since: its runs
    trained with that field's default."""
    mine, defaults = base.to_dict(), TrainConfig().to_dict()
    return all(new.get(key, mine.get(key)) == saved.get(key, defaults.get(key)) for key in {*new, *saved})


def _restricted(weights: dict[str, float], combo: list[str]) -> dict[str, float]:
    """Per-alignment weights restricted to this combination's alignments."""
    return {name: w for name, w in weights.items() if canonical_alignments([name])[0] in combo}


def run_ablation(base: TrainConfig, variants: list[Variant], seeds: list[int], out: str | Path,
                 log=print, record=None) -> dict:
    """Train and evaluate every variant at every seed into ``out``; ``record(variants)``
    writes the grid's config file (``ablation.toml``) once the grid is known to be valid.
    Each variant's settings replace the base's; its runs are named after it."""
    out = Path(out)
    variants = [replace(v, changes={**v.changes, "align": canonical_alignments(v.changes["align"])})
                if "align" in v.changes else v for v in variants]
    aligned = [v.changes.get("align", base.align) for v in variants]
    for variant, align in zip(variants, aligned):
        stages = variant.changes.get("stages", base.stages)
        if stages not in (None, "auto") and "align" in variant.changes:
            raise MiaError("mia ablate: --stages NAME:EPOCHS fixes the alignments; use --stages auto (or none)")
    if len({v.name for v in variants}) != len(variants):
        raise MiaError("mia ablate: the same variant (or --align combination) is given twice")
    settings = _settings(base, variants, seeds)
    results_path = out / "ablation.json"
    state = {"settings": settings, "runs": []}
    check_ablation_dir(out)
    if results_path.exists():
        state = _read_state(results_path)
        if not _extends(settings, state["settings"], base):
            raise MiaError(f"--out {out} holds an ablation with other settings (the same options may add seeds "
                           "or combinations after the saved ones); choose another --out")
        state["settings"] = settings
    done = {(r["combination"], r["seed"]) for r in state["runs"]}
    report_split = _report_split(base.data)
    if record is not None:
        record(variants)
    total = len(variants) * len(seeds)
    for n, ((variant, combo), seed) in enumerate(((vc, s) for vc in zip(variants, aligned) for s in seeds), start=1):
        name = variant.name
        if (name, seed) in done:
            log(f"[{n}/{total}] {name} seed {seed}: done earlier, skipped")
            continue
        run_dir = out / "runs" / f"{name}-seed{seed}"
        config = replace(base, **{k: tuple(v) if k == "image_size" and v is not None else v
                                  for k, v in variant.changes.items()}, seed=seed, out=str(run_dir))
        config = replace(config, align=combo, weights=_restricted(config.weights, combo),
                         loss_weights=_restricted(config.loss_weights, combo))
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
