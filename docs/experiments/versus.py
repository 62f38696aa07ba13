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

import numpy as np

from mia.core.evaluation.intervals import PeopleBootstrap, QueryOutcomes, paired_difference
from mia.core.experiments.ablation_report import COMPARED


def versus(ablation: Path, arm: str, other: str) -> dict:
    """``{metric: {estimate, low, high, verdict}}`` of ``arm`` minus ``other``."""
    state = json.loads((ablation / "ablation.json").read_text())
    runs = {name: [QueryOutcomes.load(ablation / r["outcomes"]) for r in
                   sorted(state["runs"], key=lambda r: r["seed"]) if r["combination"] == name]
            for name in (arm, other)}
    if not runs[arm] or len(runs[arm]) != len(runs[other]):
        raise SystemExit(f"{ablation}: '{arm}' and '{other}' need finished runs at the same seeds")
    bootstrap = PeopleBootstrap(runs[other][0].person)
    metrics = [m for m in COMPARED if not np.isnan(runs[other][0].values[m]).all()]
    return {m: {**(d := paired_difference(runs[arm], runs[other], m, bootstrap)).to_dict(), "verdict": d.verdict}
            for m in metrics}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("ablation", type=Path)
    parser.add_argument("arm")
    parser.add_argument("other")
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args()
    result = versus(args.ablation, args.arm, args.other)
    for metric, d in result.items():
        print(f"{args.arm} minus {args.other}: {metric} {d['estimate']:+.2f} [{d['low']:+.2f}, {d['high']:+.2f}] "
              f"{d['verdict']}")
    if args.json:
        args.json.write_text(json.dumps({"arm": args.arm, "other": args.other, "differences": result}, indent=2))


if __name__ == "__main__":
    main()
