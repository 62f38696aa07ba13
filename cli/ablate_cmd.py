"""``mia ablate``."""

from __future__ import annotations

import click

from mia.cli.options import config_from, explicit_options, parse_list, train_options
from mia.core.ablation import markdown_table, run_ablation
from mia.core.errors import MiaError


def parse_seeds(ctx, param, value):
    try:
        return [int(s) for s in value.split(",") if s.strip()]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers such as 0,1,2, got {value!r}") from None


@click.command(name="ablate")
@click.option("--align", "combinations", multiple=True, required=True,
              help="one combination per use: --align global --align global,part --align global,part,fine")
@click.option("--seeds", default="0", show_default=True, callback=parse_seeds, help="comma-separated seeds")
@train_options
@click.option("--out", required=True, help="ablation directory (ablation.json/.md/.png, runs/)")
@click.pass_context
def ablate_command(ctx, combinations, seeds, out, **options):
    """Train and evaluate every alignment combination with the same budget; report mean ± std."""
    combos = [parse_list(ctx, None, c) for c in combinations]
    if not seeds:
        raise MiaError("--seeds: give at least one seed")
    base = config_from(None, {**explicit_options(ctx, options), "out": out})
    base.validate()
    try:
        state = run_ablation(base, combos, seeds, out, log=lambda m: click.echo(m, err=True))
    except KeyboardInterrupt:
        raise MiaError(f"interrupted; finished runs are in {out}/ablation.json: run the same command to resume") from None
    click.echo(markdown_table(state))
    click.echo(f"wrote {out}/ablation.json, {out}/ablation.md, {out}/ablation.png")
