"""Optional chunker: the noun chunks of an installed spaCy pipeline (``--chunker spacy:NAME``).

spaCy is an optional dependency (``pip install mia-reid[spacy]`` plus a pipeline package),
so it is imported only when this chunker is asked for, and a missing spaCy or pipeline is
a one-line :class:`MiaError` rather than a traceback.
"""

from __future__ import annotations

from mia.core.base.errors import MiaError

DEFAULT_PIPELINE = "en_core_web_sm"


class SpacyChunker:
    """``chunker(caption) -> list[str]``: the lowercased ``noun_chunks`` of a spaCy pipeline."""

    def __init__(self, nlp):
        self.nlp = nlp

    def __call__(self, caption: str) -> list[str]:
        return [chunk.text.lower() for chunk in self.nlp(caption).noun_chunks]


def spacy_chunker(option: str | None) -> SpacyChunker:
    """Load the pipeline package ``option`` (default ``en_core_web_sm``)."""
    name = option or DEFAULT_PIPELINE
    spec = f"--chunker spacy:{name}"
    try:
        import spacy
    except ImportError:
        raise MiaError(f"{spec}: spaCy is not installed (pip install spacy and the pipeline package)") from None
    try:
        nlp = spacy.load(name)
    except OSError:
        raise MiaError(f"{spec}: spaCy pipeline '{name}' is not installed "
                       f"(python -m spacy download {name})") from None
    return SpacyChunker(nlp)
