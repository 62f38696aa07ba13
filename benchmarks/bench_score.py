"""Time to score a CUHK-PEDES-sized test split (6,156 queries x 3,074 images) per alignment
and for all together, against the single matrix product that bounds it: every query
phrase vector times every gallery stripe vector, ``[Q*M, D] x [D, G*K]``.

Features are random with the real shapes (D=512, K=6 stripes, M=10 phrase slots with six
used on average), scored through the same ``score_chunks`` that evaluation uses.

    python benchmarks/bench_score.py [--device cuda] [--chunk N] [--quick]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import torch

from _common import profile_top, random_export, report, result_path, time_it
from mia.core.runtime.policy import autocast, make_policy, resolve_device
from mia.core.evaluation.evaluate import score_chunks
from mia.core.modeling.features import ImageFeatures, TextFeatures
from mia.core.modeling.model import ModelSpec, create_model

ALIGNMENTS = ["global", "part", "fine"]


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=6156)
    parser.add_argument("--gallery", type=int, default=3074)
    parser.add_argument("--chunk", type=int, help="queries per chunk (default: evaluation's, 256 on CPU, 1024 on GPU)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--quick", action="store_true", help="1,000 x 500, one repeat")
    parser.add_argument("--compile", action="store_true", help="score through torch.compile'd similarities")
    parser.add_argument("--profile", action="store_true", help="also print (and save) the top ops of scoring all")
    parser.add_argument("--backend", choices=("torch", "onnx"), default="torch",
                        help="onnx: also score all alignments through an exported model in ONNX Runtime")
    parser.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out")
    args = parser.parse_args()
    if args.quick:
        args.queries, args.gallery, args.repeats = 1000, 500, 1
    return args


def features(queries: int, gallery: int, device, dim=512, parts=6, slots=10):
    g = torch.Generator().manual_seed(0)
    lengths = torch.randint(3, slots + 1, (queries,), generator=g)
    mask = torch.arange(slots)[None] < lengths[:, None]
    text = TextFeatures(torch.randn(queries, dim, generator=g), torch.randn(queries, slots, dim, generator=g), mask)
    image = ImageFeatures(torch.randn(gallery, dim, generator=g), torch.randn(gallery, parts, dim, generator=g))
    return TextFeatures(*(t.to(device) for t in text)), ImageFeatures(*(t.to(device) for t in image))


def scorer(device):
    model = create_model(ModelSpec(image_encoder="resnet18", alignments=ALIGNMENTS, vocab_size=10, num_classes=2))
    return model.to(device).eval()


def onnx_seconds(args, text: TextFeatures, image: ImageFeatures, device) -> float:
    """All alignments scored by ONNX Runtime through an export of a model of the same shapes:
    the gallery graph once, then the scorer per chunk of queries (what ``mia eval --backend
    onnx`` and ``mia search`` do)."""
    import tempfile

    from mia.export.runtime import EncodedImages, Retriever

    with tempfile.TemporaryDirectory(prefix="bench-score-") as work:
        retriever = Retriever(random_export(Path(work), embed_dim=text.global_.shape[1],
                                            num_parts=image.parts.shape[1]), device=device.type)
        texts = {"text_global": text.global_.cpu().numpy(), "text_phrases": text.phrases.cpu().numpy(),
                 "phrase_mask": text.phrase_mask.cpu().numpy()}
        gallery = EncodedImages({"image_global": image.global_.cpu().numpy(), "image_parts": image.parts.cpu().numpy()})
        return time_it(lambda: retriever.score(texts, gallery, args.chunk), torch.device("cpu"), 1, args.repeats)


def peak_rss_child(args, chunk: int) -> float:
    """Peak extra resident memory (GiB) of scoring all alignments, measured in a fresh process."""
    command = [sys.executable, __file__, "--memory-child", "--chunk", str(chunk), "--queries", str(args.queries),
               "--gallery", str(args.gallery), "--device", "cpu"]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def memory_child(args) -> None:
    """Peak RSS above the baseline while scoring: Linux's high-water mark, reset first."""
    device = torch.device("cpu")
    model = scorer(device)
    text, image = features(args.queries, args.gallery, device)
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    before = _status_kib("VmRSS")
    score_chunks(model, text, image, args.chunk)
    print((_status_kib("VmHWM") - before) / 2**20)  # KiB -> GiB


def main():
    args = parse_args()
    if args.memory_child:
        return memory_child(args)
    device = resolve_device(args.device)
    policy = make_policy(device, eval_chunk=args.chunk)
    args.chunk = policy.eval_chunk
    model = scorer(device)
    score = torch.compile(model.score_prepared, dynamic=True) if args.compile else None
    text, image = features(args.queries, args.gallery, device)
    rows, seconds = [], {}
    for names in [[a] for a in ALIGNMENTS] + [ALIGNMENTS]:
        label = "+".join(names)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
            base = torch.cuda.memory_allocated(device)
        seconds[label] = time_it(lambda: score_chunks(model, text, image, args.chunk, names, score), device,
                                 1, args.repeats)
        peak = (torch.cuda.max_memory_allocated(device) - base) / 2**30 if device.type == "cuda" else float("nan")
        rows.append([label, args.chunk, seconds[label], peak])
    if policy.fused_kernels and not args.compile:  # what the Triton kernels save
        label = "+".join(ALIGNMENTS) + " (eager pooling, no Triton)"
        with policy.with_(fused_kernels=False).active():
            seconds[label] = time_it(lambda: score_chunks(model, text, image, args.chunk, None), device, 1,
                                     args.repeats)
        rows.append([label, args.chunk, seconds[label], float("nan")])
    if args.backend == "onnx":
        label = "+".join(ALIGNMENTS) + " through ONNX Runtime (gallery prepared once)"
        seconds[label] = onnx_seconds(args, text, image, device)
        rows.append([label, args.chunk, seconds[label], float("nan")])
    phrase_rows = text.phrases.reshape(-1, text.phrases.shape[-1])
    stripe_columns = image.parts.reshape(-1, image.parts.shape[-1]).T.contiguous()

    def bound():
        with autocast(device):
            return phrase_rows @ stripe_columns

    seconds["bound"] = time_it(bound, device, 1, args.repeats)
    rows.append([f"bound: [{phrase_rows.shape[0]}x{phrase_rows.shape[1]}] x [{stripe_columns.shape[0]}x{stripe_columns.shape[1]}]",
                 "-", seconds["bound"], float("nan")])
    extra = {"ratio (all alignments / bound)": round(seconds["+".join(ALIGNMENTS)] / seconds["bound"], 2),
             **({"ratio (ONNX Runtime / PyTorch, all alignments)": round(seconds[label] / seconds["+".join(ALIGNMENTS)], 2)}
                if args.backend == "onnx" else {}),
             "split": f"{args.queries} queries x {args.gallery} images",
             "similarities": "torch.compile (dynamic shapes)" if args.compile else "eager"}
    if device.type == "cpu":
        extra["peak extra RSS GiB by chunk (all alignments)"] = {
            chunk: round(peak_rss_child(args, chunk), 3) for chunk in (args.chunk // 4, args.chunk)}
    if args.profile:
        profile_top(lambda: score_chunks(model, text, image, args.chunk, None, score), device,
                    result_path("bench_score", device, args.out, ".profile.txt"), calls=1)
    report("bench_score", device, ["alignments", "chunk", "seconds", "peak extra GPU GiB"], rows, extra, args.out)


if __name__ == "__main__":
    main()
