"""The one exception type that means "the user asked for something we cannot do".

The CLI turns a :class:`MiaError` into a one-line message and a non-zero exit code; any
other exception is a bug in mia and keeps its traceback.
"""


class MiaError(Exception):
    """A user-facing error: bad input, a missing file, an unknown component name."""


def read_user_file(path, what: str) -> str:
    """The text of a file the user named (``what``: "config file", "annotation file"); a
    missing or unreadable one is one line naming it, never a traceback."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise MiaError(f"{path}: {what} not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise MiaError(f"{path}: cannot read {what} ({exc})") from None
