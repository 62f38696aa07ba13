"""mia core: plugin system, model assembly, data pipeline, training and evaluation.

Plugin authors need only ``from mia.core import hookimpl``.
"""

from mia.core.errors import MiaError
from mia.core.hookspecs import hookimpl

__all__ = ["MiaError", "hookimpl"]
