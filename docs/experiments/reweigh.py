"""One arm of a saved ``mia ablate`` grid scored again with other test-time fusion weights,
against itself as trained: the same models, queries and seeds, so the paired difference
(R@1, mAP, twin accuracy; 95% interval and verdict) is what the fusion alone changes.
Training is untouched, which is why this re-scores the arm's ``best.pt`` files instead of
training an arm with other ``--weights`` (those would pick their epoch by another score).

    python docs/experiments/reweigh.py runs/departures mia part=2 [--json FILE]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mia.core.evaluation.evaluate import evaluate_checkpoint
from mia.core.experiments.ablation_report import arm_outcomes, differences
from mia.core.settings.stages import parse_weight_items
from versus import as_dicts, print_differences


def reweigh(ablation: Path, arm: str, weights: dict[str, float], device: str = "cpu") -> dict:
    """``{metric: {estimate, low, high, verdict}}`` of ``arm`` scored with ``weights``
    (the alignments they do not name keep theirs) minus ``arm`` as it was scored."""
    state = json.loads((ablation / "ablation.json").read_text())
    runs = sorted((r for r in state["runs"] if r["combination"] == arm), key=lambda r: r["seed"])
    if not runs:
        raise SystemExit(f"{ablation}: no finished run of '{arm}'")
    reweighed = [evaluate_checkpoint(ablation / Path(r["outcomes"]).parent / "best.pt", split=r["split"],
                                     device=device, show_progress=False, weights=weights).outcomes for r in runs]
    return as_dicts(differences(reweighed, arm_outcomes(state, ablation, arm)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("ablation", type=Path)
    parser.add_argument("arm")
    parser.add_argument("weights", help="NAME=NUMBER,... as mia eval --weights takes them")
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args()
    result = reweigh(args.ablation, args.arm, parse_weight_items(args.weights))
    print_differences(f"{args.arm} with {args.weights} minus as trained", result)
    if args.json:
        args.json.write_text(json.dumps({"arm": args.arm, "weights": args.weights, "differences": result}, indent=2))


if __name__ == "__main__":
    main()
