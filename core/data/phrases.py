"""Noun phrases for every caption, chunked once per data set and cached on disk.

Chunking 80k captions with spaCy takes minutes, so results are cached under the cache
directory, keyed by the chunker spec and the exact captions: a changed caption or chunker
gives a new key, never a stale answer.
"""

from __future__ import annotations

import hashlib
import json
from typing import Callable, Sequence

from mia.core.base import atomic
from mia.core.base.paths import cache_dir
from mia.core.registry.plugins import get_component

Chunker = Callable[[str], list[str]]


def get_chunker(spec: str) -> Chunker:
    """``NAME`` or ``NAME:OPTION`` (e.g. ``spacy:en_core_web_sm``) -> a chunking function."""
    name, _, option = spec.partition(":")
    return get_component("chunker", name).factory(option or None)


def canonical_chunker(spec: str) -> str:
    """Resolve the chunker's alias so equal chunkers get equal cache keys and manifests."""
    name, sep, option = spec.partition(":")
    return get_component("chunker", name).name + (sep + option if option else "")


def chunk_all(texts: Sequence[str], spec: str) -> list[list[str]]:
    """Phrases of every text, from the cache when this chunker has seen these texts."""
    digest = hashlib.sha1(spec.encode())
    for text in texts:
        digest.update(text.encode())
        digest.update(b"\0")
    path = cache_dir() / "phrases" / f"{digest.hexdigest()[:20]}.json"
    try:
        cached = json.loads(path.read_text(encoding="utf-8"))
        if len(cached) == len(texts):
            return cached
    except (OSError, ValueError):
        pass
    chunker = get_chunker(spec)
    phrases = [chunker(text) for text in texts]
    atomic.write_text(path, json.dumps(phrases))
    return phrases
