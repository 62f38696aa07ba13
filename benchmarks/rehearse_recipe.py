"""A benchmark recipe rehearsed at full size on this machine: a synthpedes drawn with the
benchmark's split sizes (``mia data synth --like``), then ``mia train --recipe NAME
--dry-run``, which builds everything at full size, times a few training steps and a
sample of the evaluation, and projects an epoch and the whole run with its peak memory.

    python benchmarks/rehearse_recipe.py [--recipe mia-cuhk-pedes] [--like cuhk-pedes] [--data-dir runs/cuhk-like]

The drawn set is kept (``--data-dir``) and reused by later runs.  The recipe's pretrained
weights are replaced by random ones (``--image-weights none``): their values do not change
the time, and this machine may not have them.  Prints a table, writes JSON.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from _common import report, run_mia

PROJECTION = re.compile(r"projected epoch: (?P<epoch>\S+) \(evaluation (?P<eval>\S+)\); run of (?P<epochs>\d+) epochs: "
                        r"(?P<run>\S+); peak memory (?P<memory>[\d.]+) GiB")
STEP = re.compile(r"dry run on (?P<device>\S+): (?P<step>[\d.]+) s per step of (?P<batch>\d+) pairs, "
                  r"(?P<steps>\d+) steps per epoch")
DATA = re.compile(r"^train: .*$", re.M)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", default="mia-cuhk-pedes")
    parser.add_argument("--like", default="cuhk-pedes", help="the benchmark whose split sizes are drawn")
    parser.add_argument("--data-dir", default="runs/cuhk-like", help="where the drawn set is kept")
    parser.add_argument("--json", dest="json_out", default=None, help="where to write the JSON")
    args = parser.parse_args()
    data = Path(args.data_dir)
    if not (data / "reid_raw.json").is_file():
        run_mia("data", "synth", "--like", args.like, "--out", data, show=True)
    done = run_mia("train", "--recipe", args.recipe, "--data", f"{args.like}:{data}", "--image-weights", "none",
                   "--dry-run")
    output = done.stdout + done.stderr
    projection, step = PROJECTION.search(output), STEP.search(output)
    if projection is None or step is None:
        raise SystemExit(f"no projection in the dry run's output:\n{output[-2000:]}")
    rows = [[args.recipe, f"{args.like}-sized synthpedes", float(step["step"]), int(step["steps"]),
             projection["eval"], projection["epoch"], projection["run"], float(projection["memory"])]]
    report("rehearse_recipe", None, ["recipe", "data", "s per step", "steps per epoch", "evaluation", "epoch",
                                     f"run ({projection['epochs']} epochs)", "peak GiB"], rows,
           {"device": step["device"], "batch": int(step["batch"]), "data": DATA.search(output)[0],
            "command": f"mia train --recipe {args.recipe} --data {args.like}:{data} --image-weights none --dry-run"},
           args.json_out)


if __name__ == "__main__":
    main()
