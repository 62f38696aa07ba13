"""``mia export onnx|torchscript``: write the three graphs and the manifest, then prove them.

Proof has two parts.  (1) Numerical: each graph run by the backend against PyTorch on
fresh random inputs at two batch sizes and two sequence lengths; the largest difference
must stay within ``TOLERANCE`` (relative to the output's scale).  (2) With ``check_data``,
the recall check: the whole evaluation once with PyTorch and once through the exported
files only; R@1/R@5/R@10/mAP must agree within ``RECALL_TOLERANCE`` points.
Everything is written into a temporary directory that becomes ``out`` only on success,
after a check that the disk has room for the graphs' weights.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from mia.core.base import atomic
from mia.core.modeling.alignment import undeclared_reads
from mia.core.modeling.checkpoint import load_checkpoint, model_from_checkpoint
from mia.core.base.errors import MiaError
from mia.core.evaluation.evaluate import evaluate_checkpoint
from mia.core.modeling.features import ImageFeatures, TextFeatures
from mia.core.training.outputs import check_export_dir
from mia.core.data.records import load_dataset
from mia.core.base.version import VERSION
from mia.export.backends import BACKENDS, torch_signature, onnx_signature, write_onnx, write_torchscript
from mia.export.evaluation import evaluate_retriever
from mia.export.graphs import build_graphs, example_inputs, graph_io
from mia.export.manifest import FORMAT, MANIFEST, sha256_of, tokenizer_entries
from mia.export.runtime import Retriever

TOLERANCE = 1e-4  # fp32: max |backend - torch| <= TOLERANCE * max(1, max |torch|)
RECALL_TOLERANCE = 0.1  # percentage points
CHECK_BATCHES = (1, 4)
CHECK_LENGTHS = ((5, 2), (19, 4))  # (words per caption, phrases per caption)
CHECKED_METRICS = ("R1", "R5", "R10", "mAP")


def export_model(checkpoint: str | Path, out: str | Path, backend: str = "onnx", opset: int = 18,
                 exporter: str = "dynamo", check_data: str | None = None, force: bool = False,
                 device: str = "auto", log=print, check_split: str | None = None) -> dict:
    """Export ``checkpoint`` to ``out``; returns the manifest (with its verification)."""
    out = Path(out)
    check_export_dir(out, force, inputs=[checkpoint, check_data])
    payload = load_checkpoint(checkpoint)
    model, tokenizer = model_from_checkpoint(payload, checkpoint)
    graphs, ios = build_graphs(model), graph_io(model)
    example = example_inputs(model, batch=2, words=7, phrases=3)
    check_declarations(model, example)
    suffix = BACKENDS[backend]
    # each graph's file holds its weights: together, about the export's size
    needed = sum(t.nelement() * t.element_size() for graph in graphs.values() for t in graph.state_dict().values())
    with atomic.atomic_directory(out, replace=True, needed=needed, what="export") as tmp:
        signatures = {}
        for name, graph in graphs.items():
            args = tuple(example[n] for n in ios[name].inputs)
            path = tmp / f"{name}{suffix}"
            log(f"exporting {name} -> {path.name}")
            if backend == "onnx":
                write_onnx(graph, args, path, ios[name], opset, exporter)
                signatures[name] = onnx_signature(path)
            else:
                write_torchscript(graph, args, path)
                with torch.no_grad():
                    outputs = graph(*args)
                signatures[name] = torch_signature(ios[name], args, outputs if isinstance(outputs, tuple) else (outputs,))
        manifest = _manifest(model, tokenizer, payload, backend, opset, exporter, signatures, tmp, suffix)
        atomic.write_text(tmp / MANIFEST, json.dumps(manifest, indent=2))
        manifest["verification"] = {"tolerance": TOLERANCE, "max_abs_diff": verify_outputs(tmp, model, graphs, log)}
        if check_data:
            manifest["verification"]["recall_check"] = recall_check(checkpoint, tmp, check_data, device, log,
                                                                    check_split)
        atomic.write_text(tmp / MANIFEST, json.dumps(manifest, indent=2))
    return manifest


def check_declarations(model, example: dict) -> None:
    """The scorer graph gets parts and phrases only when an alignment declares it reads them;
    one that reads them undeclared would be exported with stand-ins, so it is an error here."""
    text = TextFeatures(example["text_global"], example["text_phrases"], example["phrase_mask"])
    image = ImageFeatures(example["image_global"], example["image_parts"])
    for name in model.active:
        problems = undeclared_reads(model.alignments[name], text, image)
        if problems:
            raise MiaError(f"alignment '{name}' reads {' and '.join(problems)} without declaring it: its exported "
                           "scorer would not receive them; set the attribute to True in the plugin")


def _manifest(model, tokenizer, payload, backend, opset, exporter, signatures, tmp: Path, suffix: str) -> dict:
    spec = model.spec
    text = tokenizer_entries(tokenizer, tmp)
    written = [f"{name}{suffix}" for name in signatures] + ([text["tokenizer_file"]] if "tokenizer_file" in text else [])
    files = {name: sha256_of(tmp / name) for name in written}
    return {
        "format": FORMAT, "mia_version": VERSION, "backend": backend,
        "exporter": exporter if backend == "onnx" else "torch.jit.trace",
        "opset": opset if backend == "onnx" else None,
        "exported": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "alignments": list(model.active), "weights": {a: spec.weight(a) for a in model.active},
        "image_encoder": spec.image_encoder, "text_encoder": spec.text_encoder,
        "embed_dim": spec.embed_dim, "num_parts": spec.num_parts,
        "image": {"size": list(spec.image_size), "mean": list(spec.image_mean), "std": list(spec.image_std),
                  "weights": spec.image_weights,
                  "channels": "RGB", "layout": "NCHW", "resize": "bilinear", "scale": "1/255"},
        "text": {**text, "max_words": spec.max_words, "max_phrases": spec.max_phrases,
                 "phrase_words": spec.phrase_words, "phrase_encoding": model.text_settings().phrase_encoding,
                 "chunker": model.chunker if model.scoring_needs[0] else None, "weights": spec.text_weights},
        "graphs": {name: {"file": f"{name}{suffix}", **signature} for name, signature in signatures.items()},
        "files": files,
        "source": {"epoch": payload.get("epoch"), "config": payload.get("config", {}).get("data")},
    }


@torch.no_grad()
def verify_outputs(model_dir: Path, model, graphs, log=print) -> dict[str, float]:
    """Backend vs PyTorch on fresh random inputs; raises MiaError above the tolerance.

    The backend may have dropped inputs a graph never reads, so each side is fed by name.
    """
    retriever = Retriever(model_dir, device="cpu")
    ios = graph_io(model)
    worst: dict[str, float] = {}
    shapes = [(batch, words, phrases) for batch in CHECK_BATCHES for words, phrases in CHECK_LENGTHS]
    for seed, (batch, words, phrases) in enumerate(shapes, start=1):
        inputs = example_inputs(model, batch, words, phrases, seed=seed)
        feeds = {k: v.numpy() for k, v in inputs.items()}
        for name, graph in graphs.items():
            expected = graph(*(inputs[n] for n in ios[name].inputs))
            expected = expected if isinstance(expected, tuple) else (expected,)
            got = retriever.run(name, feeds)
            for output, reference in zip(retriever.outputs[name], expected):
                reference = reference.numpy()
                diff = float(np.abs(got[output].astype(np.float64) - reference.astype(np.float64)).max()) \
                    if reference.size else 0.0
                scale = max(1.0, float(np.abs(reference).max()) if reference.size else 1.0)
                if diff > TOLERANCE * scale:
                    raise MiaError(f"verification failed: {name}.{output} differs from PyTorch by {diff:.3g} "
                                   f"(batch {batch}, {words} words; tolerance {TOLERANCE * scale:.3g})")
                worst[f"{name}.{output}"] = max(worst.get(f"{name}.{output}", 0.0), diff)
    log("max |exported - PyTorch| over batch sizes 1, 4 and lengths 5, 19: "
        + ", ".join(f"{k} {v:.2e}" for k, v in worst.items()) + f" (tolerance {TOLERANCE:g} x scale)")
    return worst


def recall_check(checkpoint, model_dir: Path, data_spec: str, device: str, log=print, split: str | None = None) -> dict:
    """The full evaluation with PyTorch and with the exported files on ``split`` (default:
    test, else the data set's evaluation split); they must agree."""
    dataset = load_dataset(data_spec)
    split = split or ("test" if dataset.has_split("test") else dataset.eval_split())
    reference = evaluate_checkpoint(checkpoint, data_spec, split, device, show_progress=False).metrics
    exported, _ = evaluate_retriever(Retriever(model_dir, device=device), dataset.split(split), show_progress=False)
    gaps = {m: abs(exported[m] - reference[m]) for m in CHECKED_METRICS}
    log(f"recall check on {split}: " + ", ".join(
        f"{m} {reference[m]:.2f} (PyTorch) vs {exported[m]:.2f} (exported)" for m in CHECKED_METRICS))
    worst = max(gaps, key=gaps.get)
    if gaps[worst] > RECALL_TOLERANCE:
        raise MiaError(f"recall check failed: {worst} differs by {gaps[worst]:.2f} points "
                       f"(PyTorch {reference[worst]:.2f}, exported {exported[worst]:.2f}; allowed {RECALL_TOLERANCE})")
    return {"split": split, "pytorch": reference, "exported": exported, "max_gap": gaps[worst]}
