"""``mia recipes``: the shipped (and plugins') training recipes."""

from __future__ import annotations

import click


@click.group(name="recipes", invoke_without_command=True)
@click.pass_context
def recipes(ctx):
    """List training recipes (mia train --recipe NAME), or show one."""
    if ctx.invoked_subcommand is None:
        from mia.core.registry.plugins import get_registry
        from mia.core.settings.run_config import load_recipe

        registry = get_registry("recipe")
        width = max((len(name) for name in registry.names()), default=0)
        for component in registry:
            default_for = load_recipe(component.name).default_for
            suffix = f" [default for --data {default_for}]" if default_for else ""
            click.echo(f"{component.name:<{width}}  {component.description}{suffix}")


@recipes.command(name="show")
@click.argument("name")
def show(name):
    """Print a recipe (a name, or a .toml file), comments and all."""
    from mia.core.settings.run_config import load_recipe

    click.echo(load_recipe(name).text, nl=False)
