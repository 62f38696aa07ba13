"""``mia eval``."""

from __future__ import annotations

import json

import click

from mia.core.device import DEVICES
from mia.core.evaluate import evaluate_checkpoint
from mia.core.metrics import chance_r1, format_metrics_table
from mia.core.records import SPLITS


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
    result = evaluate_checkpoint(checkpoint_path, data, split, device, eval_chunk, workers,
                                 show_progress=not as_json, log=lambda m: click.echo(m, err=True))
    eval_split, metrics, active = result.split, result.metrics, result.model.active
    chance = chance_r1(eval_split.query_pids, eval_split.gallery_pids)
    if as_json:
        click.echo(json.dumps({"checkpoint": str(checkpoint_path), "split": split, "alignments": active,
                               "queries": len(eval_split.table), "gallery": len(eval_split.records),
                               "chance_R1": chance, **metrics}))
    else:
        click.echo(f"{split}: {len(eval_split.table)} queries x {len(eval_split.records)} images "
                   f"(R1 of a random ranking: {chance:.2f}%)")
        click.echo(format_metrics_table({"+".join(active): metrics}))
