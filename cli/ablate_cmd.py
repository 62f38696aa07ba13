"""``mia ablate``."""

from __future__ import annotations

import re
from pathlib import Path

import click

from mia.cli.options import (command_line_values, config_file_options, config_files, explicit_options, shown_default,
                             train_options)
from mia.cli.params import parse_list, parse_seeds
from mia.core.experiments.ablation import Variant, run_ablation
from mia.core.experiments.ablation_report import intervals, markdown_table
from mia.core.base.errors import MiaError

VARIANT_NAME = re.compile(r"[A-Za-z0-9_.+-]+")
#: the seeds of an ablation that names none (nor does its --config)
DEFAULT_SEEDS = (0,)


def parse_variant(text: str) -> Variant:
    """``NAME`` or ``NAME: KEY=VALUE KEY=VALUE ...`` (the settings this arm changes)."""
    from mia.core.settings.run_config import parse_setting

    name, _, settings = text.partition(":")
    name = name.strip()
    if not VARIANT_NAME.fullmatch(name):
        raise MiaError(f"--variant {text!r}: expected NAME[: KEY=VALUE ...] with a NAME of letters, digits, "
                       "'_', '.', '+' or '-' (it names the runs' folders)")
    where = f"--variant {name}"
    return Variant(name, dict(parse_setting(item, where) for item in settings.split()))


@click.command(name="ablate")
@click.option("--align", "combinations", multiple=True,
              help="one combination per use: --align global --align global,part --align global,part,fine "
                   "(with --variant: the one combination every variant trains)")
@click.option("--variant", "variants", multiple=True,
              help="one arm per use, the first the baseline: NAME[: KEY=VALUE ...], e.g. --variant joint "
                   "--variant 'staged: stages=global:3,part:1,fine:1'")
@click.option("--seeds", callback=parse_seeds, help=f"comma-separated seeds (default {shown_default(DEFAULT_SEEDS)}, or --config's)")
@config_file_options
@train_options
@click.option("--out", required=True, help="ablation directory (ablation.json/.md/.png/.toml, runs/)")
@click.pass_context
def ablate_command(ctx, combinations, variants, seeds, recipe, config_path, out, **options):
    """Train and evaluate every alignment combination (or variant) with the same budget; report intervals and verdicts."""
    from mia.core.settings.run_config import provenance_lines, resolve, write_ablation_config

    log = lambda m: click.echo(m, err=True)  # noqa: E731
    given = {**explicit_options(ctx, options), "out": out}
    files = config_files(recipe, config_path, given.get("data"), log)
    grid = next((f.grid for f in reversed(files) if f.grid is not None), {})
    variants = list(variants) or grid.get("variant", [])
    combos = [parse_list(ctx, None, c) for c in combinations] or ([] if variants else grid.get("align", []))
    if variants:
        if len(combos) > 1:
            raise MiaError("--variant varies other settings at one --align combination: give at most one --align")
        if combos:
            given["align"] = combos[0]
        arms, recorded = [parse_variant(v) for v in variants], {"variant": variants}
    elif combos:
        arms, recorded = [Variant.of_alignments(c) for c in combos], {"align": combos}
    else:
        raise MiaError("mia ablate needs --align (one combination per use), --variant, or --config OUT/ablation.toml")
    seeds = seeds or grid.get("seeds") or list(DEFAULT_SEEDS)
    base, origin = resolve(files, command_line_values(given))
    base.validate()

    def record(_arms) -> None:  # once the grid and the data have passed their checks
        for line in provenance_lines(base, origin):
            log(line)
        write_ablation_config(out, base, origin, {**recorded, "seeds": seeds})

    try:
        state = run_ablation(base, arms, seeds, out, log=log, record=record)
    except KeyboardInterrupt:
        raise MiaError(f"interrupted; finished runs are in {out}/ablation.json: run the same command to resume") from None
    click.echo(markdown_table(state, intervals(state, Path(out))))
    click.echo(f"wrote {out}/ablation.json, {out}/ablation.md, {out}/ablation.png")
