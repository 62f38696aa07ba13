"""The one exception type that means "the user asked for something we cannot do".

The CLI turns a :class:`MiaError` into a one-line message and a non-zero exit code; any
other exception is a bug in mia and keeps its traceback.
"""


class MiaError(Exception):
    """A user-facing error: bad input, a missing file, an unknown component name."""
