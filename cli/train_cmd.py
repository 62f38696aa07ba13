"""``mia train``."""

from __future__ import annotations

import click

from mia.cli.options import (command_line_values, config_file_options, config_files, explicit_options, shown_default,
                             train_options)
from mia.cli.params import parse_list
from mia.core.modeling.checkpoint import load_checkpoint
from mia.core.settings.config import TrainConfig
from mia.core.base.errors import MiaError
from mia.core.evaluation.metrics import format_metrics_table
from mia.core.base.progress import format_seconds
from mia.core.training.train import Trainer, train

@click.command(name="train")
@click.option("--align", callback=parse_list, help=f"alignments, comma-separated: global,part,fine (default {shown_default(TrainConfig().align)})")
@config_file_options
@train_options
@click.option("--out", default="runs/mia", show_default=True, help="run directory (checkpoints, metrics.jsonl, config.toml)")
@click.option("--resume", is_flag=True, help="continue the run in --out from last.pt")
@click.option("--dry-run", is_flag=True, help="build everything at full size, time a few steps, print the projected "
                                              "epoch and run time, peak memory and the config; write nothing")
@click.pass_context
def train_command(ctx, align, recipe, config_path, out, resume, dry_run, **options):
    """Train a model and keep the best checkpoint on val (or test), by --select-by."""
    from mia.core.settings.run_config import resolve

    log = lambda m: click.echo(m, err=True)  # noqa: E731
    given = explicit_options(ctx, options)
    if align is not None:
        given["align"] = align
    if ctx.get_parameter_source("out") != click.core.ParameterSource.DEFAULT:
        given["out"] = out
    if resume:
        if recipe or config_path:
            raise MiaError("--resume continues the run as it was started: drop --recipe and --config")
        base = TrainConfig.from_dict(load_checkpoint(f"{out}/last.pt", resumable=True)["config"])
        config, origin = resolve([], {**base.to_dict(), **command_line_values(given)})
    else:
        files = config_files(recipe, config_path, given.get("data"), log)
        config, origin = resolve(files, command_line_values(given))
        config.validate()
    if dry_run:
        _rehearse(config, origin, log)
        return
    try:
        result = train(config, resume=resume, origin=origin)
    except KeyboardInterrupt:
        raise MiaError(f"interrupted; the last finished epoch is in {config.out}/last.pt: continue with "
                       f"'mia train --out {config.out} --resume'") from None
    if not result.is_main:
        return
    done = result.history[-1]["epoch"] if result.history else 0
    if done < config.epochs:
        click.echo(f"stopped after epoch {done}/{config.epochs}: continue with 'mia train --out {config.out} --resume'")
    best = result.best
    if best["metrics"] is not None:
        split = result.history[-1]["split"]
        label = " (selected on test: not an unbiased test number)" if split == "test" else ""
        click.echo(f"best epoch {best['epoch']} on {split} -> {config.out}/best.pt{label}")
        click.echo(format_metrics_table({"+".join(config.align): best["metrics"]}))


def _rehearse(config: TrainConfig, origin: dict, log) -> None:
    from mia.core.settings.run_config import render_config

    figures = Trainer(config, origin=origin, log=log).rehearse()
    log(f"dry run on {figures['device']}: {figures['step_seconds']:.2f} s per step of {config.batch_size} pairs, "
        f"{figures['steps_per_epoch']} steps per epoch")
    click.echo(f"projected epoch: {format_seconds(figures['epoch_seconds'])} "
               f"(evaluation {format_seconds(figures['eval_seconds'])}); run of {config.epochs} epochs: "
               f"{format_seconds(figures['run_seconds'])}; peak memory {figures['peak_memory_bytes'] / 2**30:.2f} GiB")
    click.echo(render_config(config, origin, "The configuration this run would use (dry run: nothing was written)"))
