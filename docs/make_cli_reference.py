"""Write docs/cli.md from the commands' own --help (a test checks it is current).

    python docs/make_cli_reference.py
"""

from __future__ import annotations

from pathlib import Path

import click

from mia.cli.main import cli

WIDTH = 100
INTRO = """# Command-line reference

Generated from the commands' `--help` by `python docs/make_cli_reference.py` (the test
suite checks it is current). Every option is checked when the command line is parsed: a
malformed value is one line naming the option and the expected form, with exit code 2.
"""


def _help(command: click.Command, path: list[str], parent: click.Context | None) -> str:
    context = click.Context(command, info_name=path[-1], parent=parent, terminal_width=WIDTH, max_content_width=WIDTH)
    return command.get_help(context), context


def _sections(command: click.Command, path: list[str], parent: click.Context | None) -> list[str]:
    text, context = _help(command, path, parent)
    sections = [f"## `{' '.join(path)}`\n\n```\n{text}\n```\n"]
    if isinstance(command, click.Group):
        for name in command.list_commands(context):
            sections += _sections(command.get_command(context, name), [*path, name], context)
    return sections


def reference() -> str:
    return INTRO + "\n" + "\n".join(_sections(cli, ["mia"], None))


if __name__ == "__main__":
    Path(__file__).with_name("cli.md").write_text(reference())
    print(f"wrote {Path(__file__).with_name('cli.md')}")
