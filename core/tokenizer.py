"""Word tokenizer and vocabulary, kept pure Python so the ONNX runtime can reuse them.

Why not ``processed_tokens`` from CUHK-PEDES: a deployed search gets raw sentences, so
training must tokenize exactly the way serving will.  This module imports neither torch
nor numpy for that reason.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Iterable

PAD, UNK = "<pad>", "<unk>"
PAD_ID, UNK_ID = 0, 1
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def tokenize(text: str) -> list[str]:
    """Lower-case word tokens; punctuation is dropped ("T-shirt," -> ["t", "shirt"])."""
    return _WORD.findall(text.lower())


class Vocabulary:
    """Word <-> id, with ``<pad>`` = 0 and ``<unk>`` = 1; built from training captions only."""

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

    def decode(self, ids: Iterable[int]) -> str:
        return " ".join(self.words[i] for i in ids if i != PAD_ID)


def pad_ids(sequences: list[list[int]], length: int) -> list[list[int]]:
    """Right-pad (or cut) each id list to ``length`` with ``PAD_ID``; empty lists stay all-pad."""
    return [seq[:length] + [PAD_ID] * (length - len(seq[:length])) for seq in sequences]
