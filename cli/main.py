"""The ``mia`` group: turns user errors into one line and a non-zero exit, loads plugin commands."""

from __future__ import annotations

import json

import click

from mia.core.errors import MiaError
from mia.core.plugins import KIND_HOOKS, get_plugin_manager, get_registry, plugin_summaries
from mia.core.version import VERSION


class MiaGroup(click.Group):
    """A click group whose commands report :class:`MiaError` and OS errors without a traceback."""

    _plugins_loaded = False

    def main(self, *args, **kwargs):
        try:
            self._load_plugin_commands()
        except MiaError as exc:
            click.echo(f"Error: {exc}", err=True)
            raise SystemExit(1) from None
        return super().main(*args, **kwargs)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except MiaError as exc:
            raise click.ClickException(str(exc)) from None
        except OSError as exc:  # permission denied, disk full, ...: the user's to fix
            raise click.ClickException(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")) from None

    def _load_plugin_commands(self) -> None:
        if not MiaGroup._plugins_loaded:
            MiaGroup._plugins_loaded = True
            get_plugin_manager().hook.register_commands(cli=self)


@click.group(cls=MiaGroup)
@click.version_option(VERSION, prog_name="mia")
def cli():
    """mia: text-to-image person retrieval with multi-granularity image-text alignments."""


@cli.command(name="plugins")
def plugins_command():
    """Show the loaded plugins and the hooks each implements (JSON)."""
    click.echo(json.dumps(plugin_summaries(), indent=2))


@cli.command(name="list")
@click.argument("kind", required=False, type=click.Choice(sorted(KIND_HOOKS)))
def list_command(kind):
    """List registered components, of one KIND or of all kinds."""
    for each in [kind] if kind else sorted(KIND_HOOKS):
        click.echo(f"{each}s:")
        for component in get_registry(each):
            aliases = f" (aliases: {', '.join(component.aliases)})" if component.aliases else ""
            click.echo(f"  {component.name}{aliases}: {component.description} [{component.plugin}]")


from mia.cli.ablate_cmd import ablate_command  # noqa: E402  (commands attach to the group defined above)
from mia.cli.data_cmd import data  # noqa: E402
from mia.cli.eval_cmd import eval_command  # noqa: E402
from mia.cli.export_cmd import export  # noqa: E402
from mia.cli.search_cmd import search_command  # noqa: E402
from mia.cli.train_cmd import train_command  # noqa: E402

for _command in (data, train_command, eval_command, ablate_command, export, search_command):
    cli.add_command(_command)
