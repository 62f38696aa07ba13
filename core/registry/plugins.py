"""The plugin manager and the component registries built from it.

Built-in components live in ordinary plugin modules (``BUILTIN_PLUGINS``) and register
through the same hooks as third-party plugins, which are found through the entry-point
group ``mia``.  ``MIA_LOAD_PLUGINS`` limits the third-party ones: unset loads them all, a
comma-separated list loads those entry points or distributions, an empty string loads
none (the test suite sets it empty so that installed plugins cannot change results).
"""

from __future__ import annotations

import functools
import importlib
import os
from dataclasses import dataclass
from importlib import metadata
from typing import Callable, Iterator

import pluggy

from mia.core.registry import hookspecs
from mia.core.base.errors import MiaError

BUILTIN_PLUGINS = (
    "mia.plugins.image_encoders",
    "mia.plugins.text_encoders",
    "mia.plugins.alignments",
    "mia.plugins.chunkers",
    "mia.plugins.datasets",
    "mia.plugins.recipes",
    "mia.plugins.detectors",
)

#: component kind -> the hook that fills its registry
KIND_HOOKS = {
    "image-encoder": "register_image_encoders",
    "text-encoder": "register_text_encoders",
    "alignment": "register_alignments",
    "dataset": "register_datasets",
    "chunker": "register_phrase_chunkers",
    "recipe": "register_recipes",
    "detector": "register_person_detectors",
}


def _wanted_entry_points() -> list[metadata.EntryPoint]:
    entry_points = list(metadata.entry_points(group="mia"))
    selection = os.environ.get("MIA_LOAD_PLUGINS")
    if selection is None:
        return entry_points
    names = {name.strip().lower() for name in selection.split(",") if name.strip()}
    return [
        ep
        for ep in entry_points
        if ep.name.lower() in names or (ep.dist is not None and ep.dist.name.lower() in names)
    ]


@functools.cache
def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, with built-ins and the selected entry points."""
    pm = pluggy.PluginManager("mia")
    pm.add_hookspecs(hookspecs)
    for module_name in BUILTIN_PLUGINS:
        pm.register(importlib.import_module(module_name), name=module_name)
    for ep in _wanted_entry_points():
        if pm.get_plugin(ep.name) is not None:
            raise MiaError(f"two plugins use the entry-point name '{ep.name}'")
        try:
            module = ep.load()
        except Exception as exc:  # a broken third-party plugin must not hide the others' names
            raise MiaError(f"plugin '{ep.name}' ({ep.value}) failed to import: {exc}") from exc
        pm.register(module, name=ep.name)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        hook = str(exc).split("'")[1] if "'" in str(exc) else str(exc)
        raise MiaError(f"plugin '{pm.get_name(exc.plugin)}' implements an unknown hook '{hook}'; "
                       f"known hooks: {', '.join(sorted(KIND_HOOKS.values()))}, register_commands") from None
    return pm


def reset_plugins() -> None:
    """Forget the plugin manager and registries (tests, or after changing sys.path)."""
    get_plugin_manager.cache_clear()
    get_registry.cache_clear()
    _resolve.cache_clear()


@dataclass(frozen=True)
class Component:
    """One registered component: a name, the factory that builds it and who registered it.

    ``target`` is the factory itself or a ``"module:attribute"`` reference to it, imported
    on first use: a plugin whose components need torch can still be listed (``mia list``,
    ``mia --help``) in a process that never imports torch.
    """

    kind: str
    name: str
    target: Callable | str
    plugin: str
    aliases: tuple[str, ...] = ()
    description: str = ""

    @property
    def factory(self) -> Callable:
        if not isinstance(self.target, str):
            return self.target
        return _resolve(self.target, f"{self.kind} '{self.name}' of plugin '{self.plugin}'")


@functools.cache
def _resolve(reference: str, label: str) -> Callable:
    module_name, _, attribute = reference.partition(":")
    try:
        return getattr(importlib.import_module(module_name), attribute)
    except ImportError as exc:
        raise MiaError(f"{label}: cannot import {module_name} ({exc})") from None
    except AttributeError:
        raise MiaError(f"{label}: {module_name} has no attribute '{attribute}'") from None


class Registry:
    """Components of one kind by name and alias; duplicates and unknown names are errors."""

    def __init__(self, kind: str):
        self.kind = kind
        self._components: dict[str, Component] = {}
        self._lookup: dict[str, Component] = {}

    def register(self, plugin: str, name: str, factory: Callable | str, aliases=(), description=""):
        """``factory``: the callable, or ``"module:attribute"`` naming it (imported on use)."""
        if isinstance(factory, str) and factory.count(":") != 1:
            raise MiaError(f"plugin '{plugin}' registers {self.kind} '{name}' as {factory!r}; "
                           "expected a callable or 'module:attribute'")
        component = Component(self.kind, name, factory, plugin, tuple(aliases), description)
        for key in (name, *component.aliases):
            existing = self._lookup.get(key)
            if existing is not None:
                raise MiaError(
                    f"{self.kind} '{key}' is registered twice: by plugin '{existing.plugin}' "
                    f"and by plugin '{plugin}'"
                )
            self._lookup[key] = component
        self._components[name] = component

    def get(self, name: str) -> Component:
        try:
            return self._lookup[name]
        except KeyError:
            raise MiaError(
                f"unknown {self.kind} '{name}'; available: {', '.join(self.names()) or '(none)'}"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._components)

    def __iter__(self) -> Iterator[Component]:
        return iter(self._components[name] for name in self.names())


@functools.cache
def get_registry(kind: str) -> Registry:
    """The registry of ``kind`` (see ``KIND_HOOKS``), filled by every plugin's hook."""
    if kind not in KIND_HOOKS:
        raise MiaError(f"unknown component kind '{kind}'; available: {', '.join(KIND_HOOKS)}")
    registry = Registry(kind)
    hook = getattr(get_plugin_manager().hook, KIND_HOOKS[kind])
    # Call each implementation on its own so that a duplicate can name both plugins.
    for impl in hook.get_hookimpls():
        impl.function(register=functools.partial(registry.register, impl.plugin_name))
    return registry


def get_component(kind: str, name: str) -> Component:
    return get_registry(kind).get(name)


def plugin_summaries() -> list[dict]:
    """What ``mia plugins`` prints: each plugin, its hooks and (for installed ones) version."""
    pm = get_plugin_manager()
    summaries = []
    for plugin_name, plugin in sorted(pm.list_name_plugin(), key=lambda item: item[0]):
        entry = {
            "name": plugin_name,
            "hooks": sorted(impl.name for impl in pm.get_hookcallers(plugin) or []),
        }
        dist = _distribution_of(plugin_name)
        if dist is not None:
            entry["version"] = dist.version
        summaries.append(entry)
    return summaries


def _distribution_of(plugin_name: str):
    for ep in metadata.entry_points(group="mia"):
        if ep.name == plugin_name and ep.dist is not None:
            return ep.dist
    return None
