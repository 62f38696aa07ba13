"""``mia train``."""

from __future__ import annotations

import click

from mia.cli.options import config_from, explicit_options, train_options
from mia.cli.params import parse_list
from mia.core.checkpoint import load_checkpoint
from mia.core.config import TrainConfig
from mia.core.errors import MiaError
from mia.core.metrics import format_metrics_table
from mia.core.train import train


@click.command(name="train")
@click.option("--align", callback=parse_list, help="alignments, comma-separated: global,part,fine (default global)")
@train_options
@click.option("--out", default="runs/mia", show_default=True, help="run directory (checkpoints, metrics.jsonl)")
@click.option("--resume", is_flag=True, help="continue the run in --out from last.pt")
@click.pass_context
def train_command(ctx, align, out, resume, **options):
    """Train a model and keep the best checkpoint on val (or test), by --select-by."""
    given = explicit_options(ctx, options)
    if align is not None:
        given["align"] = align
    given["out"] = out
    base = TrainConfig.from_dict(load_checkpoint(f"{out}/last.pt", resumable=True)["config"]) if resume else None
    config = config_from(base, given)
    try:
        result = train(config, resume=resume)
    except KeyboardInterrupt:
        raise MiaError(f"interrupted; the last finished epoch is in {out}/last.pt: continue with "
                       f"'mia train --out {out} --resume'") from None
    if not result.is_main:
        return
    done = result.history[-1]["epoch"] if result.history else 0
    if done < config.epochs:
        click.echo(f"stopped after epoch {done}/{config.epochs}: continue with 'mia train --out {out} --resume'")
    best = result.best
    if best["metrics"] is not None:
        click.echo(f"best epoch {best['epoch']} on {result.history[-1]['split']} -> {out}/best.pt")
        click.echo(format_metrics_table({"+".join(config.align): best["metrics"]}))
