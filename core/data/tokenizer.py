"""Tokenizers: mia's word vocabulary, and the form every tokenizer takes.

Kept pure Python so the torch-free runtime reuses it.  Why not ``processed_tokens`` from
CUHK-PEDES: a deployed search gets raw sentences, so training must tokenize exactly the
way serving will.  A pretrained text tower brings its own tokenizer
(:class:`mia.core.data.hf_tokenizer.HFTokenizer`) with the same calls.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Iterable

PAD, UNK = "<pad>", "<unk>"
PAD_ID, UNK_ID = 0, 1  # every mia tokenizer pads with id 0; text encoders mask tokens == 0
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_WORD_ANY_CASE = re.compile(_WORD.pattern, re.IGNORECASE)


def tokenize(text: str) -> list[str]:
    """Lower-case word tokens; punctuation is dropped ("T-shirt," -> ["t", "shirt"])."""
    return _WORD.findall(text.lower())


def word_spans(text: str) -> list[tuple[int, int]]:
    """Character spans in ``text`` of the words :func:`tokenize` returns, in order."""
    return [match.span() for match in _WORD_ANY_CASE.finditer(text)]


class Vocabulary:
    """mia's word tokenizer: word <-> id, with ``<pad>`` = 0 and ``<unk>`` = 1, built from
    training captions only (what the bi-GRU reads).

    Every tokenizer mia uses offers the same few calls (``encode``, ``token_spans``,
    ``unknown_words``, ``to_dict``, ``len``), so captions become arrays the same way in
    training and in the torch-free runtime whatever the text encoder.
    """

    kind = "words"

    def __init__(self, words: Iterable[str]):
        self.words = list(words)
        if self.words[:2] != [PAD, UNK]:
            raise ValueError(f"a vocabulary must start with {PAD!r}, {UNK!r}")
        self.index = {word: i for i, word in enumerate(self.words)}
        if len(self.index) != len(self.words):
            raise ValueError("a vocabulary must not repeat words")

    @classmethod
    def build(cls, texts: Iterable[str], min_freq: int = 1) -> "Vocabulary":
        """Words seen at least ``min_freq`` times, most frequent first (ties alphabetical)."""
        counts = Counter(token for text in texts for token in tokenize(text))
        kept = sorted((w for w, c in counts.items() if c >= min_freq), key=lambda w: (-counts[w], w))
        return cls([PAD, UNK, *kept])

    def __len__(self) -> int:
        return len(self.words)

    def encode(self, text: str, max_length: int) -> list[int]:
        """Token ids of ``text``, truncated to ``max_length``; unknown words map to ``<unk>``."""
        return [self.index.get(token, UNK_ID) for token in tokenize(text)[:max_length]]

    def token_spans(self, text: str, max_length: int) -> list[tuple[int, int]]:
        """Character span of each token :meth:`encode` returns (for phrase positions)."""
        return word_spans(text)[:max_length]

    def unknown_words(self, text: str) -> list[str]:
        return [word for word in tokenize(text) if word not in self.index]

    def decode(self, ids: Iterable[int]) -> str:
        return " ".join(self.words[i] for i in ids if i != PAD_ID)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "vocabulary": list(self.words)}


def pad_ids(sequences: list[list[int]], length: int) -> list[list[int]]:
    """Right-pad (or cut) each id list to ``length`` with ``PAD_ID``; empty lists stay all-pad."""
    return [seq[:length] + [PAD_ID] * (length - len(seq[:length])) for seq in sequences]
