"""``mia compare``: is A better than B on the same queries, and how sure is that?"""

from __future__ import annotations

import json

import click

from mia.cli.params import COUNT, NON_NEGATIVE_INT
from mia.core.settings.config import DEVICES
from mia.core.data.records import SPLITS


@click.command(name="compare")
@click.argument("first", metavar="A")
@click.argument("second", metavar="B")
@click.option("--data", help="data set spec (default: the one both were trained on)")
@click.option("--split", type=click.Choice(SPLITS), default="test", show_default=True)
@click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True)
@click.option("--eval-chunk", type=COUNT, default=None, help="queries scored at a time")
@click.option("--workers", type=NON_NEGATIVE_INT, default=None, help="image-decoding worker processes")
@click.option("--json", "as_json", is_flag=True, help="print the comparison as JSON")
def compare_command(first, second, data, split, device, eval_chunk, workers, as_json):
    """Paired comparison of two checkpoints (or run directories) on the same queries.

    Prints each metric of A and B, A - B with a 95% interval from a bootstrap over people,
    and a verdict: better, worse or not resolved.
    """
    from mia.core.evaluation.comparison import compare_checkpoints, comparison_table

    result = compare_checkpoints(first, second, data, split, device, eval_chunk, workers, show_progress=not as_json)
    if as_json:
        click.echo(json.dumps(result))
        return
    click.echo(f"A = {result['models'][0]['checkpoint']}\nB = {result['models'][1]['checkpoint']}")
    click.echo(f"{result['split']} of {result['data']}: {result['queries']} queries of {result['people']} people")
    click.echo(comparison_table(result))
