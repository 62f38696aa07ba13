"""``mia eval``."""

from __future__ import annotations

import json

import click

from mia.core.checkpoint import load_checkpoint, model_from_checkpoint
from mia.core.config import TrainConfig
from mia.core.data import TextSettings
from mia.core.device import DEVICES, resolve_device
from mia.core.evaluate import evaluate, prepare_split
from mia.core.metrics import chance_r1, format_metrics_table
from mia.core.records import SPLITS, load_dataset


@click.command(name="eval")
@click.option("--checkpoint", "checkpoint_path", required=True, help="best.pt or last.pt of a run")
@click.option("--data", help="data set spec (default: the one the model was trained on)")
@click.option("--split", type=click.Choice(SPLITS), default="test", show_default=True)
@click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True)
@click.option("--eval-chunk", type=int, default=256, show_default=True, help="queries scored at a time")
@click.option("--workers", type=int, default=None, help="image-decoding worker processes")
@click.option("--json", "as_json", is_flag=True, help="print the metrics as JSON")
def eval_command(checkpoint_path, data, split, device, eval_chunk, workers, as_json):
    """Evaluate a checkpoint with the standard protocol (every caption queries every image)."""
    payload = load_checkpoint(checkpoint_path)
    config = TrainConfig.from_dict(payload["config"])
    model, vocab = model_from_checkpoint(payload)
    torch_device = resolve_device(device)
    model.to(torch_device)
    dataset = load_dataset(data or config.data)
    for note in dataset.notes:
        click.echo(f"data: {note}", err=True)
    settings = TextSettings(max_words=model.spec.max_words)
    eval_split = prepare_split(dataset.split(split), vocab, settings, None)
    if workers is None:
        workers = config.resolved_workers(torch_device.type == "cuda")
    metrics = evaluate(model, eval_split, torch_device, eval_chunk, workers, show_progress=not as_json)
    name = "+".join(model.spec.alignments)
    chance = chance_r1(eval_split.query_pids, eval_split.gallery_pids)
    if as_json:
        click.echo(json.dumps({"checkpoint": str(checkpoint_path), "split": split, "alignments": model.spec.alignments,
                               "queries": len(eval_split.table), "gallery": len(eval_split.records),
                               "chance_R1": chance, **metrics}))
    else:
        click.echo(f"{split}: {len(eval_split.table)} queries x {len(eval_split.records)} images "
                   f"(R1 of a random ranking: {chance:.2f}%)")
        click.echo(format_metrics_table({name: metrics}))
