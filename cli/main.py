"""The ``mia`` group: commands loaded on first use, failures as one line, plugin commands.

Commands are imported only when invoked (click's lazy-group pattern): ``mia --help``,
``mia list`` and ``mia search`` on an exported model never import torch, so they start
in a fraction of a second, and they work in a serving install, which has no torch at
all; a command that needs the train extra says so in one line there.  The help listing
reads each command's summary from :data:`COMMANDS` (a test keeps it equal to the
commands' own docstrings).
"""

from __future__ import annotations

import importlib
import json

import click

from mia.cli.failures import debugging, describe_crash, describe_os_error
from mia.core.base.errors import MiaError
from mia.core.registry.plugins import KIND_HOOKS, get_plugin_manager, get_registry, plugin_summaries
from mia.core.base.version import VERSION

#: name -> ("module:attribute" of the command, its one-line summary)
COMMANDS = {
    "ablate": ("mia.cli.ablate_cmd:ablate_command",
               "Train and evaluate every alignment combination (or variant) with the same budget; report intervals and verdicts."),
    "compare": ("mia.cli.compare_cmd:compare_command",
                "Paired comparison of two checkpoints (or run directories) on the same queries."),
    "data": ("mia.cli.data_cmd:data", "Generate or inspect data sets."),
    "eval": ("mia.cli.eval_cmd:eval_command", "Evaluate with the standard protocol (every caption queries every image)."),
    "export": ("mia.cli.export_cmd:export", "Export a trained model for deployment."),
    "index": ("mia.cli.index_cmd:index", "Build, merge and verify a gallery index for two-stage search."),
    "recipes": ("mia.cli.recipes_cmd:recipes", "List training recipes (mia train --recipe NAME), or show one."),
    "search": ("mia.cli.search_cmd:search_command",
               "Rank the images under --gallery (or in --index) by how well they match DESCRIPTION."),
    "serve": ("mia.cli.serve_cmd:serve_command",
              "Serve a search page and a JSON API (/api/search?q=...&k=...) over a gallery."),
    "train": ("mia.cli.train_cmd:train_command", "Train a model and keep the best checkpoint on val (or test), by --select-by."),
    "weights": ("mia.cli.weights_cmd:weights",
                "Pretrained image weights in the torch hub cache ($TORCH_HOME/hub/checkpoints)."),
}


#: the top-level module of each package of the train extra (pyproject.toml; a test keeps them
#: equal), and what a user knows it as
TRAIN_EXTRA = {"torch": "PyTorch", "torchvision": "torchvision", "onnx": "ONNX", "onnxscript": "onnxscript"}


def missing_train_extra(exc: BaseException | None, command: str | None) -> click.ClickException | None:
    """The one line for ``mia COMMAND`` run where a package of the train extra is not
    installed (a serving install has no torch), or None when ``exc`` is something else.

    The import may fail under another error (a plugin's component that cannot be imported,
    an exporter's failure), so the chain of causes is searched.
    """
    while exc is not None:
        if isinstance(exc, ModuleNotFoundError) and exc.name in TRAIN_EXTRA:
            return click.ClickException(f"mia {command} needs {TRAIN_EXTRA[exc.name]}: "
                                        f"pip install 'mia-reid[train]' ({exc.name} is not installed)")
        exc = exc.__cause__ or exc.__context__
    return None


class UsageLine(click.ClickException):
    """A usage error (bad option value, missing argument) as one line, with click's exit code 2."""

    exit_code = 2


def _usage_line(exc: click.UsageError) -> UsageLine:
    where = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
    return UsageLine(" ".join(exc.format_message().split()) + where)


class MiaGroup(click.Group):
    """A click group whose commands load on first use and fail with one line: usage errors,
    :class:`MiaError`, OS errors, a missing train extra, and (as a safety net) bugs, see
    :mod:`mia.cli.failures`."""

    _plugins_loaded = False

    def main(self, *args, **kwargs):
        try:
            self._load_plugin_commands()
        except MiaError as exc:
            click.echo(f"Error: {exc}", err=True)
            raise SystemExit(1) from None
        return super().main(*args, **kwargs)

    def list_commands(self, ctx):
        return sorted(set(self.commands) | set(COMMANDS))

    def get_command(self, ctx, name):
        if name not in self.commands and name in COMMANDS:
            module_name, _, attribute = COMMANDS[name][0].partition(":")
            try:
                module = importlib.import_module(module_name)
            except ModuleNotFoundError as exc:
                if missing := missing_train_extra(exc, name):
                    raise missing from None
                raise
            self.add_command(getattr(module, attribute), name)
        return self.commands.get(name)

    def format_commands(self, ctx, formatter):
        """Built-ins from :data:`COMMANDS` (no import, and the same listing whether or not a
        command has been loaded), plugin commands from their own help."""
        width = formatter.width - 6 - max(len(name) for name in self.list_commands(ctx))
        rows = [(name, COMMANDS[name][1] if name in COMMANDS else self.commands[name].get_short_help_str(width))
                for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except MiaError as exc:
            missing = missing_train_extra(exc, ctx.invoked_subcommand)
            raise missing or click.ClickException(" ".join(str(exc).split())) from None
        except click.UsageError as exc:
            raise _usage_line(exc) from None
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except OSError as exc:  # permission denied, disk full, ...: the user's to fix
            raise click.ClickException(describe_os_error(exc)) from None
        except Exception as exc:  # a bug: still one line, with the traceback kept in a file
            if missing := missing_train_extra(exc, ctx.invoked_subcommand):
                raise missing from None
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
