"""Captions and their noun phrases -> padded id arrays (numpy only, no torch).

Training, evaluation and the torch-free ONNX runtime all call :func:`encode_texts`, so a
query is turned into ids exactly the way the training captions were.

A noun phrase reaches the text encoder in one of two forms (``phrase_encoding``), in the
same ``[N, M, P]`` array with 0 for padding:

* ``sequences``: the phrase's own token ids, encoded as a short text of its own (MIA's
  bi-GRU runs over each phrase separately);
* ``spans``: the 1-based positions of the caption's tokens that the phrase covers, so the
  encoder pools its contextual outputs there and needs no second pass (what a pretrained
  transformer does cheaply: one forward per caption instead of one per phrase).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from mia.core.data.tokenizer import pad_ids, tokenize, word_spans

PHRASE_ENCODINGS = ("sequences", "spans")


@dataclass(frozen=True)
class TextSettings:
    """How captions become arrays; saved with the model so serving does the same."""

    max_words: int = 64
    max_phrases: int = 10
    phrase_words: int = 6
    phrase_encoding: str = "sequences"


def phrase_char_spans(text: str, phrases: Sequence[str]) -> list[tuple[int, int]]:
    """Character span of each phrase in ``text``, matched word by word (a chunker may drop
    punctuation or change case); phrases that cannot be found are left out."""
    words, spans = tokenize(text), word_spans(text)
    found, cursor = [], 0
    for phrase in phrases:
        target = tokenize(phrase)
        if not target:
            continue
        starts = [j for j in range(len(words) - len(target) + 1) if words[j:j + len(target)] == target]
        if not starts:
            continue
        start = next((j for j in starts if j >= cursor), starts[0])
        cursor = start + len(target)
        found.append((spans[start][0], spans[cursor - 1][1]))
    return found


def phrase_positions(text: str, phrases: Sequence[str], token_spans: Sequence[tuple[int, int]],
                     limit: int) -> list[list[int]]:
    """For each phrase, the 1-based positions (at most ``limit``) of the tokens it overlaps."""
    positions = []
    for start, end in phrase_char_spans(text, phrases):
        covered = [i + 1 for i, (s, e) in enumerate(token_spans) if e > s and s < end and e > start]
        positions.append(covered[:limit])
    return positions


def encode_texts(texts: Sequence[str], tokenizer, settings: TextSettings,
                 phrase_lists: Sequence[list[str]] | None) -> tuple[np.ndarray, np.ndarray]:
    """(tokens ``[N, L]``, phrases ``[N, M, P]``) for raw captions and their chunked phrases.

    ``phrase_lists=None`` (no alignment reads phrases) gives an ``[N, 0, 1]`` array.
    Phrases are packed at the front; a phrase of only unknown words still counts.
    """
    ids = [tokenizer.encode(text, settings.max_words) for text in texts]
    width = max([1, *map(len, ids)])
    tokens = np.asarray(pad_ids(ids, width), dtype=np.int64).reshape(len(texts), width)
    if phrase_lists is None:
        return tokens, np.zeros((len(texts), 0, 1), dtype=np.int64)
    phrases = np.zeros((len(texts), settings.max_phrases, settings.phrase_words), dtype=np.int64)
    for n, (text, text_phrases) in enumerate(zip(texts, phrase_lists)):
        if settings.phrase_encoding == "spans":
            spans = tokenizer.token_spans(text, settings.max_words)
            encoded = phrase_positions(text, text_phrases, spans, settings.phrase_words)
        else:
            encoded = [tokenizer.encode(p, settings.phrase_words) for p in text_phrases]
        encoded = [p for p in encoded if p][: settings.max_phrases]
        for m, phrase in enumerate(encoded):
            phrases[n, m, : len(phrase)] = phrase
    return tokens, phrases
