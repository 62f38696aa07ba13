"""Built-in training recipes: one TOML file per (method, data set) in this folder, each
registered under its file name (``mia recipes`` lists them, ``mia train --recipe NAME``
trains one)."""

from __future__ import annotations

import functools
import tomllib
from pathlib import Path

from mia.core.registry.hookspecs import hookimpl

FOLDER = Path(__file__).parent


@hookimpl
def register_recipes(register):
    for path in sorted(FOLDER.glob("*.toml")):
        description = tomllib.loads(path.read_text(encoding="utf-8")).get("description", "")
        register(path.stem, functools.partial(path.read_text, encoding="utf-8"), description=description)
