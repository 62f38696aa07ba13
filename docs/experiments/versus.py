"""One arm of a saved ``mia ablate`` grid against another arm than its baseline (the
ablation's own report sets every arm against the first): the paired difference in R@1, mAP
and twin accuracy over the same people and seeds, with its 95% interval and verdict, as
the report computes them.

    python docs/experiments/versus.py runs/departures staged-restart staged [--json FILE]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mia.core.evaluation.intervals import Interval
from mia.core.experiments.ablation_report import arm_outcomes, differences


def as_dicts(found: dict[str, Interval]) -> dict:
    """``{metric: {estimate, low, high, verdict}}``: what the scripts here print and save."""
    return {m: {**d.to_dict(), "verdict": d.verdict} for m, d in found.items()}


def print_differences(label: str, result: dict) -> None:
    for metric, d in result.items():
        print(f"{label}: {metric} {d['estimate']:+.2f} [{d['low']:+.2f}, {d['high']:+.2f}] {d['verdict']}")


def versus(ablation: Path, arm: str, other: str) -> dict:
    """``{metric: {estimate, low, high, verdict}}`` of ``arm`` minus ``other``."""
    state = json.loads((ablation / "ablation.json").read_text())
    runs = {name: arm_outcomes(state, ablation, name) for name in (arm, other)}
    if not runs[arm] or len(runs[arm]) != len(runs[other]):
        raise SystemExit(f"{ablation}: '{arm}' and '{other}' need finished runs at the same seeds")
    return as_dicts(differences(runs[arm], runs[other]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("ablation", type=Path)
    parser.add_argument("arm")
    parser.add_argument("other")
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args()
    result = versus(args.ablation, args.arm, args.other)
    print_differences(f"{args.arm} minus {args.other}", result)
    if args.json:
        args.json.write_text(json.dumps({"arm": args.arm, "other": args.other, "differences": result}, indent=2))


if __name__ == "__main__":
    main()
