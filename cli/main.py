"""The ``mia`` group: turns user errors into one line and a non-zero exit, loads plugin commands."""

from __future__ import annotations

import json

import click

from mia.cli.failures import debugging, describe_crash, describe_os_error
from mia.core.errors import MiaError
from mia.core.plugins import KIND_HOOKS, get_plugin_manager, get_registry, plugin_summaries
from mia.core.version import VERSION


class UsageLine(click.ClickException):
    """A usage error (bad option value, missing argument) as one line, with click's exit code 2."""

    exit_code = 2


def _usage_line(exc: click.UsageError) -> UsageLine:
    where = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
    return UsageLine(" ".join(exc.format_message().split()) + where)


class MiaGroup(click.Group):
    """A click group whose commands fail with one line: usage errors, :class:`MiaError`, OS
    errors, and (as a safety net) bugs, see :mod:`mia.cli.failures`."""

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
            raise click.ClickException(" ".join(str(exc).split())) from None
        except click.UsageError as exc:
            raise _usage_line(exc) from None
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except OSError as exc:  # permission denied, disk full, ...: the user's to fix
            raise click.ClickException(describe_os_error(exc)) from None
        except Exception as exc:  # a bug: still one line, with the traceback kept in a file
            if debugging():
                raise
            raise click.ClickException(describe_crash(exc)) from None

    def resolve_command(self, ctx, args):
        try:
            return super().resolve_command(ctx, args)
        except click.UsageError as exc:  # "No such command 'trian'"
            raise _usage_line(exc) from None

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
from mia.cli.compare_cmd import compare_command  # noqa: E402
from mia.cli.data_cmd import data  # noqa: E402
from mia.cli.eval_cmd import eval_command  # noqa: E402
from mia.cli.export_cmd import export  # noqa: E402
from mia.cli.search_cmd import search_command  # noqa: E402
from mia.cli.train_cmd import train_command  # noqa: E402
from mia.cli.weights_cmd import weights  # noqa: E402

for _command in (data, train_command, eval_command, compare_command, ablate_command, export, search_command, weights):
    cli.add_command(_command)
