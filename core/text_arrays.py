"""Captions and their noun phrases -> padded id arrays (numpy only, no torch).

Training, evaluation and the torch-free ONNX runtime all call :func:`encode_texts`, so a
query is turned into ids exactly the way the training captions were.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from mia.core.tokenizer import Vocabulary, pad_ids


@dataclass(frozen=True)
class TextSettings:
    """How captions become arrays; saved with the model so serving does the same."""

    max_words: int = 64
    max_phrases: int = 10
    phrase_words: int = 6


def encode_texts(texts: Sequence[str], vocab: Vocabulary, settings: TextSettings,
                 phrase_lists: Sequence[list[str]] | None) -> tuple[np.ndarray, np.ndarray]:
    """(tokens ``[N, L]``, phrases ``[N, M, P]``) for raw captions and their chunked phrases.

    ``phrase_lists=None`` (no alignment reads phrases) gives an ``[N, 0, 1]`` array.
    Phrases are packed at the front; a phrase of only unknown words still counts.
    """
    ids = [vocab.encode(text, settings.max_words) for text in texts]
    width = max([1, *map(len, ids)])
    tokens = np.asarray(pad_ids(ids, width), dtype=np.int64).reshape(len(texts), width)
    if phrase_lists is None:
        return tokens, np.zeros((len(texts), 0, 1), dtype=np.int64)
    phrases = np.zeros((len(texts), settings.max_phrases, settings.phrase_words), dtype=np.int64)
    for n, text_phrases in enumerate(phrase_lists):
        encoded = [vocab.encode(p, settings.phrase_words) for p in text_phrases]
        encoded = [p for p in encoded if p][: settings.max_phrases]
        for m, phrase in enumerate(encoded):
            phrases[n, m, : len(phrase)] = phrase
    return tokens, phrases
