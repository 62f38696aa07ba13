"""``mia data``: make and inspect data sets."""

from __future__ import annotations

import os

import click

from mia.cli.params import COUNT, NON_NEGATIVE_INT, Number
from mia.core.base.errors import MiaError
from mia.core.training.outputs import check_new_dir
from mia.core.base.progress import Progress
from mia.core.data.records import SPLITS, load_dataset
from mia.plugins.datasets.synthpedes import SynthConfig, generate_synthpedes


@click.group(name="data")
def data():
    """Generate or inspect data sets."""


@data.command(name="synth")
@click.option("--out", required=True, help="directory to create (must not exist or be empty)")
@click.option("--ids", type=Number(int, minimum=3), default=SynthConfig.ids, show_default=True, help="identities")
@click.option("--images-per-id", type=COUNT, default=SynthConfig.images_per_id, show_default=True)
@click.option("--seed", type=NON_NEGATIVE_INT, default=SynthConfig.seed, show_default=True)
@click.option("--height", type=Number(int, minimum=32), default=SynthConfig.height, show_default=True, help="nominal crop height")
@click.option("--val-ids", type=COUNT, default=None, help=f"identities in val (default: {SynthConfig.val_fraction:.0%} of --ids)")
@click.option("--test-ids", type=COUNT, default=None, help=f"identities in test (default: {SynthConfig.test_fraction:.0%} of --ids)")
@click.option("--workers", type=COUNT, default=None,
              help="processes drawing the images (default: one per core; the output does not depend on it)")
@click.option("--like", type=click.Choice(["cuhk-pedes", "rstpreid"]),
              help="the split sizes of a real benchmark (identities per split, images per person): a full-size "
                   "rehearsal with mia train --dry-run; --ids, --val-ids, --test-ids and --images-per-id are then set")
@click.pass_context
def synth(ctx, out, ids, images_per_id, seed, height, val_ids, test_ids, workers, like):
    """Generate a synthpedes data set in CUHK-PEDES format (imgs/, reid_raw.json, the
    held-out-wording reid_raw_unseen.json, identities.json and twins.json)."""
    if like is not None:
        sized = [f"--{name.replace('_', '-')}" for name in ("ids", "images_per_id", "val_ids", "test_ids")
                 if ctx.get_parameter_source(name) != click.core.ParameterSource.DEFAULT]
        if sized:
            raise MiaError(f"--like {like} sets the sizes: drop {', '.join(sized)}")
        ids, images_per_id, val_ids, test_ids = sizes_like(like)
        click.echo(f"like {like}: {ids:,} identities ({ids - val_ids - test_ids:,} train, {val_ids:,} val, "
                   f"{test_ids:,} test), {images_per_id} images each", err=True)
    if (val_ids or 0) + (test_ids or 0) >= ids:
        raise MiaError(f"--val-ids {val_ids} and --test-ids {test_ids} leave no training identity out of --ids {ids}")
    check_new_dir("--out", out)
    try:
        config = SynthConfig(ids=ids, images_per_id=images_per_id, seed=seed, height=height, val_ids=val_ids,
                             test_ids=test_ids)
        with Progress(ids * images_per_id, "synthpedes", unit="img") as bar:
            generate_synthpedes(out, config, progress=lambda done, _total: bar.update(done - bar.done),
                                workers=workers)
    except (ValueError, FileExistsError) as exc:
        raise MiaError(f"mia data synth: {exc}") from None
    click.echo(f"wrote {ids * images_per_id} images of {ids} identities to {out} (use --data {out})")


def sizes_like(name: str) -> tuple[int, int, int, int]:
    """(identities, images per person, val identities, test identities) of a synthpedes shaped
    like the named benchmark's published splits (synthpedes always draws a val split, so
    only benchmarks with one are offered)."""
    from mia.core.registry.plugins import get_component

    published = get_component("dataset", name).factory.published
    images_per_id = max(1, round(published["train"].images / published["train"].identities))
    return (sum(s.identities for s in published.values()), images_per_id, published["val"].identities,
            published["test"].identities)


@data.command(name="info")
@click.argument("spec")
def info(spec):
    """Check a data set and print its split sizes."""
    dataset = load_dataset(spec)
    for note in dataset.notes:
        click.echo(f"note: {note}")
    click.echo(f"{dataset.name}: {len(dataset.records)} images")
    for split in SPLITS:
        records = [r for r in dataset.records if r.split == split]
        if records:
            captions = sum(len(r.captions) for r in records)
            ids = len({r.person_id for r in records})
            click.echo(f"  {split}: {ids} identities, {len(records)} images, {captions} captions")


@data.command(name="path")
@click.argument("spec")
@click.option("--split", type=click.Choice(SPLITS), help="the folder holding this split's images")
def path(spec, split):
    """Print where a data set's images are (for synthpedes: the generated cache)."""
    dataset = load_dataset(spec)
    records = dataset.split(split) if split else dataset.records
    click.echo(os.path.commonpath([str(r.image.parent) for r in records]))
