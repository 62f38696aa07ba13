"""The installed version (``mia`` is a namespace package, so it has no ``__version__``)."""

from importlib import metadata

try:
    VERSION = metadata.version("mia-reid")
except metadata.PackageNotFoundError:  # running from a source tree that was never installed
    VERSION = "0+unknown"
