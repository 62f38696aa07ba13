"""Every option's default is stated once: a number a --help text calls the default is the
value the command really uses (the configuration, the execution policy's constants, the
search's), and a bound is the configuration's."""

from __future__ import annotations

import re

import click
import pytest

from mia.cli.ablate_cmd import DEFAULT_SEEDS
from mia.cli.main import cli
from mia.cli.options import TRAIN_OPTIONS, shown_default
from mia.core.settings.config import BOUNDS, EVAL_CHUNK, WORKER_CAP, TrainConfig
from mia.export.searching import DEFAULT_RERANK
from mia.plugins.datasets.synthpedes import SynthConfig

#: where each default that a help text states in numbers, outside the training options, comes from
SOURCES = {
    "--eval-chunk": [EVAL_CHUNK["cpu"], EVAL_CHUNK["cuda"]],
    "--workers": [WORKER_CAP["cpu"], WORKER_CAP["cuda"]],
    "--rerank": [DEFAULT_RERANK],
    "--val-ids": [round(SynthConfig.val_fraction * 100)],
    "--test-ids": [round(SynthConfig.test_fraction * 100)],
    "--weights": [1], "--loss-weights": [1],  # "default 1 each": a missing weight is 1 (core.stages)
    "--seeds": list(DEFAULT_SEEDS),
}
TRAIN_FIELDS = {declaration[0]: field for declaration, field, _kwargs in TRAIN_OPTIONS}
#: what a help text calls the default: "(default 0.2)", "default: 10% of --ids", "default 256 on CPU, 1024 on GPU"
STATED = re.compile(r"default:? ([^;)]*)")
#: a number, but not one inside a formula or a name ("cores-1", "384x128" are described, not values)
NUMBER = re.compile(r"(?<![\w.-])\d+(?:\.\d+)?(?:e-?\d+)?(?![\w.])")


def commands(group=cli, path=("mia",)):
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if isinstance(command, click.Group):
            yield from commands(command, (*path, name))
        else:
            yield " ".join((*path, name)), command


def options():
    return [(name, option) for name, command in commands() for option in command.params
            if isinstance(option, click.Option) and option.help]


def value_used(flag: str, option: click.Option) -> list[float] | None:
    if flag in SOURCES:
        return [float(value) for value in SOURCES[flag]]
    if flag in TRAIN_FIELDS:
        return [float(n) for n in NUMBER.findall(shown_default(getattr(TrainConfig(), TRAIN_FIELDS[flag])))]
    return None


@pytest.mark.parametrize("command, option", options(), ids=[f"{c}:{o.opts[0]}" for c, o in options()])
def test_the_default_a_help_states_is_the_value_used(command, option):
    flag = option.opts[0]
    stated = [float(n) for text in STATED.findall(option.help) for n in NUMBER.findall(text)]
    if not stated:
        return
    used = value_used(flag, option)
    assert used is not None, f"{command} {flag}: its help states a default ({option.help!r}) with no known source"
    assert set(stated) <= set(used), f"{command} {flag}: help states {stated}, the value used is {used}"


def test_a_hand_typed_default_is_caught():
    option = click.Option(["--margin"], help="ranking-loss margin (default 0.3)")
    with pytest.raises(AssertionError, match="the value used is"):
        test_the_default_a_help_states_is_the_value_used("mia train", option)


def test_the_command_line_checks_the_configurations_bounds():
    train = dict(commands())["mia train"]
    for option in train.params:
        field = TRAIN_FIELDS.get(option.opts[0])
        if field in BOUNDS:
            assert option.type.bound == BOUNDS[field], option.opts[0]
