"""mia core, in rooms that import one way, each from the rooms before it:

``base`` < ``registry`` < ``data`` < ``settings`` < ``runtime`` < ``modeling`` <
``evaluation`` < ``training`` < ``experiments`` (tests/test_core_rooms.py holds them to it).

Plugin authors need only ``from mia.core import hookimpl``; docs/architecture.md says what
each module owns.
"""

from mia.core.base.errors import MiaError
from mia.core.registry.hookspecs import hookimpl

__all__ = ["MiaError", "hookimpl"]
