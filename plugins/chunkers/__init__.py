"""Built-in noun-phrase chunkers, registered through ``register_phrase_chunkers``."""

from __future__ import annotations

from mia.core.base.errors import MiaError
from mia.core.registry.hookspecs import hookimpl
from mia.plugins.chunkers.rules import RuleChunker
from mia.plugins.chunkers.spacy_chunker import DEFAULT_PIPELINE, spacy_chunker


def rule_chunker(option: str | None) -> RuleChunker:
    """``rules`` or ``rules:strict`` (no unlisted words as modifiers)."""
    if option is None:
        return RuleChunker()
    if option == "strict":
        return RuleChunker(unknown_modifiers=False)
    raise MiaError(f"--chunker rules:{option}: unknown option; the only option is 'strict'")


@hookimpl
def register_phrase_chunkers(register):
    register("rules", rule_chunker, aliases=("rule",),
             description="word-list noun phrases (pure Python; rules:strict keeps only listed words)")
    register("spacy", spacy_chunker,
             description=f"noun chunks of an installed spaCy pipeline (spacy:NAME, default {DEFAULT_PIPELINE})")
