"""``mia eval``: a checkpoint with PyTorch, or an exported model through its runtime."""

from __future__ import annotations

import json

import click
import numpy as np

from mia.cli.params import COUNT, NON_NEGATIVE_INT, parse_weights_option
from mia.core.evaluation.intervals import format_intervals, outcome_intervals, query_outcomes, standard_errors
from mia.core.settings.config import DEVICES, EVAL_CHUNK
from mia.core.base.errors import MiaError
from mia.core.training.outputs import check_page_path
from mia.core.evaluation.metrics import chance_r1, format_metrics_table, top_k
from mia.core.data.records import SPLITS, load_dataset


@click.command(name="eval")
@click.option("--checkpoint", "checkpoint_path", help="best.pt or last.pt of a run (--backend torch)")
@click.option("--model", "model_dir", help="exported model directory (--backend onnx)")
@click.option("--backend", type=click.Choice(["torch", "onnx"]), default="torch", show_default=True)
@click.option("--data", help="data set spec (default for checkpoints: the one the model was trained on)")
@click.option("--split", type=click.Choice(SPLITS), default="test", show_default=True)
@click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True)
@click.option("--eval-chunk", type=COUNT, default=None,
              help=f"queries scored at a time (bounds memory; default {EVAL_CHUNK['cpu']} on CPU, {EVAL_CHUNK['cuda']} on GPU)")
@click.option("--workers", type=NON_NEGATIVE_INT, default=None, help="image-decoding worker processes (torch backend)")
@click.option("--weights", callback=parse_weights_option,
              help="override the checkpoint's score fusion weights, e.g. part=0 (--backend torch)")
@click.option("--json", "as_json", is_flag=True, help="print the metrics as JSON")
@click.option("--html", "html_path", help="write a results page: each query with its top-10 images")
@click.option("--failures-only", is_flag=True, help="with --html: only queries whose top-1 is wrong")
@click.option("--html-queries", type=COUNT, default=500, show_default=True, help="with --html: queries shown at most")
def eval_command(checkpoint_path, model_dir, backend, data, split, device, eval_chunk, workers, weights, as_json,
                 html_path, failures_only, html_queries):
    """Evaluate with the standard protocol (every caption queries every image)."""
    log = lambda m: click.echo(m, err=True)  # noqa: E731
    if html_path:
        check_page_path("--html", html_path)
    if backend == "torch":
        if not checkpoint_path:
            raise MiaError("--backend torch needs --checkpoint PATH (or use --backend onnx --model DIR)")
        from mia.core.evaluation.evaluate import evaluate_checkpoint

        result = evaluate_checkpoint(checkpoint_path, data, split, device, eval_chunk, workers,
                                     show_progress=not as_json, log=log, weights=weights)
        records, metrics, alignments = result.split.records, result.metrics, result.model.active
        similarity, source, extra, outcomes = result.similarity, str(checkpoint_path), {}, result.outcomes
        if result.selected_on_test and split == "test" and not data:
            extra["selection"] = "epoch selected on test (--select-on-test): not an unbiased test number"
    else:
        if not model_dir or not data:
            raise MiaError("--backend onnx needs --model DIR and --data SPEC")
        if weights:
            raise MiaError("--weights needs --backend torch: an exported scorer has its fusion weights built in")
        from mia.export.evaluation import evaluate_retriever
        from mia.export.runtime import Retriever

        retriever = Retriever(model_dir, device=device)
        dataset = load_dataset(data)
        for note in dataset.notes:
            log(f"data: {note}")
        records = dataset.split(split)
        metrics, similarity = evaluate_retriever(retriever, records, eval_chunk, show_progress=not as_json)
        alignments, source = retriever.manifest["alignments"], str(model_dir)
        extra = {"providers": retriever.providers}
    query_pids = np.asarray([r.person_id for r in records for _ in r.captions])
    gallery_pids = np.asarray([r.person_id for r in records])
    chance = chance_r1(query_pids, gallery_pids)
    if backend == "onnx":  # the torch path ranked its scores once already, into result.outcomes
        outcomes = query_outcomes(similarity, query_pids, gallery_pids, dataset.twins)
    intervals = outcome_intervals(outcomes)
    if html_path:
        from mia.export.html import evaluation_page

        ranking, scores = top_k(similarity, 10)
        shown = evaluation_page(html_path, f"{'+'.join(alignments)} on {split} ({source})", metrics,
                                [c for r in records for c in r.captions], query_pids, [str(r.image) for r in records],
                                gallery_pids, ranking, scores, failures_only, html_queries)
        log(f"wrote {html_path} ({shown} queries)")
    if as_json:
        click.echo(json.dumps({"source": source, "backend": backend, "split": split, "alignments": alignments,
                               "queries": len(query_pids), "gallery": len(gallery_pids),
                               "people": len(np.unique(query_pids)), "chance_R1": chance, **extra, **metrics,
                               "intervals": {m: [i.low, i.high] for m, i in intervals.items()},
                               **standard_errors(outcomes, ("R1", "mAP")),
                               **({"twin": intervals["twin"].estimate} if "twin" in intervals else {})}))
    else:
        where = f" via {extra['providers'][0]}" if "providers" in extra else ""
        selection = f"; {extra['selection']}" if "selection" in extra else ""
        click.echo(f"{split}: {len(query_pids)} queries x {len(gallery_pids)} images{where} "
                   f"(R1 of a random ranking: {chance:.2f}%){selection}")
        click.echo(format_metrics_table({"+".join(alignments): metrics}))
        click.echo(format_intervals(intervals, len(np.unique(query_pids))))
