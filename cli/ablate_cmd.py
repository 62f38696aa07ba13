"""``mia ablate``."""

from __future__ import annotations

from pathlib import Path

import click

from mia.cli.options import config_from, explicit_options, train_options
from mia.cli.params import parse_list, parse_seeds
from mia.core.ablation import run_ablation
from mia.core.ablation_report import intervals, markdown_table
from mia.core.errors import MiaError


@click.command(name="ablate")
@click.option("--align", "combinations", multiple=True, required=True,
              help="one combination per use: --align global --align global,part --align global,part,fine")
@click.option("--seeds", default="0", show_default=True, callback=parse_seeds, help="comma-separated seeds")
@train_options
@click.option("--out", required=True, help="ablation directory (ablation.json/.md/.png, runs/)")
@click.pass_context
def ablate_command(ctx, combinations, seeds, out, **options):
    """Train and evaluate every alignment combination with the same budget; report intervals and verdicts."""
    combos = [parse_list(ctx, None, c) for c in combinations]
    base = config_from(None, {**explicit_options(ctx, options), "out": out})
    base.validate()
    try:
        state = run_ablation(base, combos, seeds, out, log=lambda m: click.echo(m, err=True))
    except KeyboardInterrupt:
        raise MiaError(f"interrupted; finished runs are in {out}/ablation.json: run the same command to resume") from None
    click.echo(markdown_table(state, intervals(state, Path(out))))
    click.echo(f"wrote {out}/ablation.json, {out}/ablation.md, {out}/ablation.png")
