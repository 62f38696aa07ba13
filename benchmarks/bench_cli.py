"""Start-up of the command line: wall time and peak memory of whole commands, each a fresh
process (median of ``--runs``), for ``mia --help``, ``mia list`` and ``mia search --index``.

    python benchmarks/bench_cli.py --model EXPORT --gallery FOLDER     # builds a scratch index first

Targets on 2 cores: ``mia --help`` <= 0.5 s; ``mia search`` against a built index <= 1.5 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import report

MIA = [sys.executable, "-m", "mia.cli"]


def measure(command: list[str], runs: int) -> tuple[float, float]:
    """(median wall seconds, largest peak RSS in MiB) of ``runs`` fresh processes."""
    times, peaks = [], []
    for _ in range(runs):
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(process.pid, 0)
        times.append(time.perf_counter() - started)
        if status:
            sys.exit(f"{' '.join(command)} failed (status {status})")
        peaks.append(usage.ru_maxrss / 1024)
    return statistics.median(times), max(peaks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="an exported model (mia export onnx)")
    parser.add_argument("--gallery", required=True, help="a folder of images to index")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-cli-"))
    try:
        subprocess.run([*MIA, "index", "build", "--model", args.model, "--gallery", args.gallery,
                        "--out", str(work / "index")], check=True, capture_output=True)
        query = "a woman in a red coat and black trousers carrying a white bag"
        commands = {
            "mia --help": [*MIA, "--help"],
            "mia list": [*MIA, "list"],
            "mia search --index (top 10)": [*MIA, "search", query, "--model", args.model, "--index", str(work / "index")],
        }
        targets = {"mia --help": 0.5, "mia search --index (top 10)": 1.5}
        rows = []
        for name, command in commands.items():
            median, peak = measure(command, args.runs)
            target = targets.get(name)
            rows.append([name, round(median, 3), round(peak), f"<= {target} s: {'met' if median <= target else 'MISSED'}"
                         if target else "-"])
        entries = len((work / "index" / "paths.json").read_text().split('"path"')) - 1
        report("bench_cli", None, ["command", "median s", "peak RSS MiB", "target"], rows,
               {"runs": args.runs, "index_entries": entries, "model": args.model}, args.out)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
