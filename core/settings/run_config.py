"""Training configurations as files: a recipe, a run's ``config.toml`` and a rerun are one
format, so "what was run" and "what to run" can never drift apart.

A file is TOML, read with the standard library's :mod:`tomllib`::

    format = "mia-config/1"
    description = "MIA on CUHK-PEDES ..."   # recipes: the line `mia recipes` shows
    default_for = "cuhk-pedes"              # recipes: applied when --data names this set alone

    [train]
    align = ["global", "part", "fine"]      # a comment says where the value comes from
    lr = 2e-4

``[train]`` holds any subset of :class:`~mia.core.settings.config.TrainConfig`'s fields, each checked
against the field's type and bounds; every problem is one line naming the file and the key.
A run writes all of its fields, each commented with where its value came from (a recipe,
a config file, the command line or the default), so ``mia train --config
runs/a/config.toml --out runs/b`` trains the same run again.
"""

from __future__ import annotations

import difflib
import json
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path

from mia.core.base import atomic
from mia.core.settings.config import TrainConfig
from mia.core.base.errors import MiaError, read_user_file

FORMAT = "mia-config/1"
FORMAT_FAMILY = "mia-config/"
CONFIG_FILE = "config.toml"
TOP_LEVEL_KEYS = ("format", "description", "default_for", "train", "ablate")
ABLATION_FILE = "ablation.toml"
COMMAND_LINE, DEFAULT = "command line", "default"
FIELDS = {f.name: f for f in fields(TrainConfig)}


@dataclass
class ConfigFile:
    """What a recipe or config file says: its values, and where they come from (``label``,
    e.g. ``recipe mia-cuhk-pedes``) for the provenance a run prints and records."""

    label: str
    values: dict
    description: str = ""
    default_for: str | None = None
    text: str = field(default="", repr=False)
    grid: dict | None = None  # an ablation's [ablate] table: align (a list of combinations) and seeds


def parse_config(text: str, where: str, label: str) -> ConfigFile:
    """Parse and check a config or recipe file's text (``where`` names it in errors)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise MiaError(f"{where}: not valid TOML ({exc})") from None
    unknown = [key for key in data if key not in TOP_LEVEL_KEYS]
    if unknown:
        raise MiaError(f"{where}: unknown key '{unknown[0]}' (expected {', '.join(TOP_LEVEL_KEYS)})")
    written_as = data.get("format")
    if written_as != FORMAT:
        if isinstance(written_as, str) and written_as.startswith(FORMAT_FAMILY):
            raise MiaError(f"{where}: written as {written_as} by a newer mia; this mia reads {FORMAT}: upgrade mia")
        raise MiaError(f"{where}: format = \"{FORMAT}\" expected, got {written_as!r}")
    train = data.get("train", {})
    if not isinstance(train, dict):
        raise MiaError(f"{where}: [train] must be a table of training options")
    for key in ("description", "default_for"):
        if key in data and not isinstance(data[key], str):
            raise MiaError(f"{where}: {key} must be a string")
    return ConfigFile(label, _checked_values(train, where), data.get("description", ""), data.get("default_for"), text,
                      _checked_grid(data["ablate"], where) if "ablate" in data else None)


def _checked_grid(grid, where: str) -> dict:
    """``[ablate]``: ``align`` a list of alignment lists or ``variant`` a list of
    ``"NAME: KEY=VALUE ..."`` strings (as ``--variant`` takes them), and ``seeds`` a list of
    integers >= 0."""
    grid = grid if isinstance(grid, dict) else {}
    seeds = grid.get("seeds")
    if "variant" in grid:
        variants = grid["variant"]
        if not (isinstance(variants, list) and variants and all(isinstance(v, str) for v in variants)):
            raise MiaError(f"{where}: [ablate] variant must be a list of strings such as \"staged: stages=auto\"")
        parsed = {"variant": variants}
    else:
        combinations = grid.get("align")
        if not (isinstance(combinations, list) and combinations
                and all(isinstance(c, list) and c and all(isinstance(a, str) for a in c) for c in combinations)):
            raise MiaError(f"{where}: [ablate] align must be a list of alignment lists, "
                           "e.g. [[\"global\"], [\"global\", \"part\"]]")
        parsed = {"align": combinations}
    if not (isinstance(seeds, list) and seeds and all(isinstance(s, int) and not isinstance(s, bool) and s >= 0
                                                      for s in seeds) and len(set(seeds)) == len(seeds)):
        raise MiaError(f"{where}: [ablate] seeds must be a list of distinct integers >= 0")
    return {**parsed, "seeds": seeds}


def read_config_file(path: str | Path, label: str | None = None) -> ConfigFile:
    path = Path(path)
    text = read_user_file(path, "config file")
    return parse_config(text, str(path), label or f"config {path}")


def _checked_values(train: dict, where: str, table: str = "[train] ") -> dict:
    """``[train]`` values as TrainConfig fields: known keys, right types, valid values."""
    values = {}
    for key, value in train.items():
        if key not in FIELDS:
            close = difflib.get_close_matches(key, FIELDS, n=1)
            hint = f"; did you mean '{close[0]}'?" if close else f" (known: {', '.join(FIELDS)})"
            raise MiaError(f"{where}: {table}unknown key '{key}'{hint}")
        values[key] = float(value) if FIELDS[key].type == "float" and isinstance(value, int) else value
    errors = TrainConfig.type_errors(values)
    if errors:
        raise MiaError(f"{where}: {table}{errors[0]}")
    problem = TrainConfig.from_dict(values).first_problem()
    if problem is not None and problem[0] in values:
        name, expected, got = problem
        raise MiaError(f"{where}: {table}{name}: expected {expected}, got {got!r}")
    return values


def parse_setting(text: str, where: str) -> tuple[str, object]:
    """``KEY=VALUE`` as a command line writes it (``stages=global:3,part:1``,
    ``image_size=192x64``, ``weights=global=1,part=0.5``, ``image_weights=none``) -> the
    field and its value, checked like a config file's."""
    from mia.core.settings.stages import parse_weight_items

    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or key not in FIELDS:
        raise MiaError(f"{where}: expected KEY=VALUE with KEY a training option ({', '.join(FIELDS)}), got {text!r}")
    kind, raw = FIELDS[key].type, raw.strip()
    try:
        if "None" in kind and raw.lower() in ("none", ""):
            value = None
        elif kind.startswith("bool"):
            value = {"true": True, "false": False}[raw.lower()]
        elif kind.startswith("int"):
            value = int(raw)
        elif kind.startswith("float"):
            value = float(raw)
        elif kind.startswith("list[str]"):
            value = [item.strip() for item in raw.split(",") if item.strip()]
        elif kind.startswith("dict[str, float]"):
            value = parse_weight_items(raw)
        elif kind.startswith("tuple[int, int]"):
            value = [int(side) for side in raw.lower().split("x")]
        else:
            value = raw
    except (ValueError, KeyError):
        raise MiaError(f"{where}: {key}={raw!r} is not a {kind}") from None
    return key, _checked_values({key: value}, where, table="")[key]


def resolve(files: list[ConfigFile], command_line: dict) -> tuple[TrainConfig, dict[str, str]]:
    """The configuration from the defaults, then each file in order, then the command line
    (each overriding what came before), and where each field's value came from."""
    values, origin = TrainConfig().to_dict(), {name: DEFAULT for name in FIELDS}
    for source in [*files, ConfigFile(COMMAND_LINE, command_line)]:
        for key, value in source.values.items():
            values[key] = value
            origin[key] = source.label
    return TrainConfig.from_dict(values), origin


def provenance_lines(config: TrainConfig, origin: dict[str, str]) -> list[str]:
    """``config from LABEL: key=value, ...`` for every source, defaults last."""
    data = config.to_dict()
    labels = list(dict.fromkeys(label for label in origin.values() if label != DEFAULT)) + [DEFAULT]
    lines = []
    for label in labels:
        items = [f"{key}={_shown(data[key])}" for key in FIELDS if origin[key] == label]
        if items:
            lines.append(f"config from {'defaults' if label == DEFAULT else label}: {', '.join(items)}")
    return lines


def _shown(value) -> str:
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items()) or "{}"
    return str(value)


def render_config(config: TrainConfig, origin: dict[str, str], header: str, grid: dict | None = None) -> str:
    """A complete config file: every field (``None`` ones as comments: TOML has no null),
    each with where its value came from, and an ablation's grid."""
    lines = [f"# {line}" for line in header.splitlines()] + [f'format = "{FORMAT}"', "", "[train]"]
    for key, value in config.to_dict().items():
        source = f"# {origin.get(key, DEFAULT)}"
        lines.append(f"# {key} is unset  {source}" if value is None else f"{key} = {toml_value(value)}  {source}")
    if grid is not None:
        lines += ["", "[ablate]", *(f"{key} = {toml_value(value)}" for key, value in grid.items())]
    return "\n".join(lines) + "\n"


def toml_value(value) -> str:
    """A TOML literal for the values a TrainConfig holds (JSON's string escapes are TOML's)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"no TOML form for {type(value).__name__}")


def write_run_config(run_dir: str | Path, config: TrainConfig, origin: dict[str, str]) -> Path:
    """``RUN/config.toml``, written atomically beside the run's metrics."""
    path = Path(run_dir) / CONFIG_FILE
    header = (f"The complete configuration of the run in {run_dir}, written by mia train.\n"
              f"Train it again: mia train --config {path} --out NEW_RUN")
    atomic.write_text(path, render_config(config, origin, header))
    return path


def write_ablation_config(out: str | Path, base: TrainConfig, origin: dict[str, str], grid: dict) -> Path:
    """``OUT/ablation.toml``: the shared configuration and the grid (``align`` or
    ``variant``, and ``seeds``), in the format above."""
    path = Path(out) / ABLATION_FILE
    header = (f"The ablation in {out}, written by mia ablate: every arm of [ablate], at every seed, trained with\n"
              f"[train] (what the arm sets, and the seed, vary). Run it again: mia ablate --config {path} --out NEW")
    atomic.write_text(path, render_config(base, origin, header, grid))
    return path


def load_recipe(name_or_file: str) -> ConfigFile:
    """A registered recipe by name, or a recipe file by path."""
    from mia.core.registry.plugins import get_registry

    registry = get_registry("recipe")
    if name_or_file not in registry.names():
        path = Path(name_or_file)
        if path.suffix == ".toml" or path.exists():
            return read_config_file(path, label=f"recipe {path}")
        close = difflib.get_close_matches(name_or_file, registry.names(), n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise MiaError(f"--recipe {name_or_file}: no such recipe or .toml file; {hint}"
                       f"known recipes: {', '.join(registry.names())}")
    component = registry.get(name_or_file)
    return parse_config(component.factory(), f"recipe {name_or_file} (plugin {component.plugin})",
                        f"recipe {name_or_file}")


def default_recipe(dataset: str) -> tuple[str, ConfigFile] | None:
    """The recipe that declares itself the default for ``dataset`` (a canonical data set
    name), with its name; None when there is none."""
    from mia.core.registry.plugins import get_registry

    for name in get_registry("recipe").names():
        recipe = load_recipe(name)
        if recipe.default_for == dataset:
            return name, recipe
    return None
