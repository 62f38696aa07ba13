"""``mia weights``: see and prepare pretrained image weights for machines without internet."""

from __future__ import annotations

import click


@click.group(name="weights")
def weights():
    """Pretrained image weights in the torch hub cache ($TORCH_HOME/hub/checkpoints)."""


@weights.command(name="list")
def list_weights():
    """The weights names of the built-in image encoders and whether each is cached."""
    from mia.core.registry.plugins import get_registry
    from mia.core.modeling.pretrained import cached_weights

    models = [c.name for c in get_registry("image-encoder") if c.plugin == "mia.plugins.image_encoders"]
    for model, name, path, present in cached_weights(models):
        click.echo(f"{model:13} {name:15} {'cached' if present else 'missing'}  {path}")


@weights.command(name="add")
@click.argument("files", nargs=-1, required=True)
def add(files):
    """Copy torchvision weights FILES (under torchvision's own names) into the hub cache."""
    from mia.core.modeling.pretrained import add_weights_file

    for file in files:
        click.echo(f"{file} -> {add_weights_file(file)}")
