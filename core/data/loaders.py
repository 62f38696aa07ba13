"""The data pipeline: captions tokenized once into arrays, images decoded in workers.

Training iterates over (image, caption) pairs, one per caption, the field's convention.
Evaluation uses every caption of a split as a query and every image as the gallery.
Augmentation randomness comes from (seed, epoch, index), not from a global RNG, so a
resumed run sees the very same batches and crops as an uninterrupted one.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from mia.core.base.errors import MiaError
from mia.core.data.phrases import chunk_all
from mia.core.data.preprocess import augment, load_rgb, to_uint8_chw
from mia.core.data.records import Record
from mia.core.data.text_arrays import TextSettings, encode_texts


@dataclass
class TextTable:
    """Every caption of a record list as padded id arrays.

    ``tokens`` is ``[N, L]``; ``phrases`` is ``[N, M, P]`` (``M`` = 0 without a chunker);
    ``record_index[n]`` is the record that caption ``n`` describes.
    """

    tokens: np.ndarray
    phrases: np.ndarray
    record_index: np.ndarray
    person_ids: np.ndarray

    def __len__(self) -> int:
        return len(self.tokens)

    def batch(self, indices: Sequence[int] | np.ndarray, trim_slots: bool = True,
              trim: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """Token and phrase tensors for ``indices``, trimmed to the longest member.

        ``trim_slots=False`` keeps every phrase slot, so batches of query features
        can be concatenated; ``trim=False`` keeps the table's full padded shape, the same
        for every batch (what a compiled, CUDA-graphed step needs).
        """
        tokens = self.tokens[indices]
        phrases = self.phrases[indices]
        if not trim:
            return torch.from_numpy(tokens), torch.from_numpy(phrases)
        return torch.from_numpy(_trim_tokens(tokens)), torch.from_numpy(_trim_phrases(phrases, trim_slots))


def build_text_table(records: Sequence[Record], tokenizer, settings: TextSettings,
                     chunker_spec: str | None) -> TextTable:
    """All captions of ``records``; phrases (cached per data set) when a chunker is named."""
    captions, owners = [], []
    for i, record in enumerate(records):
        captions.extend(record.captions)
        owners.extend([i] * len(record.captions))
    phrase_lists = chunk_all(captions, chunker_spec) if chunker_spec else None
    tokens, phrases = encode_texts(captions, tokenizer, settings, phrase_lists)
    owners_arr = np.asarray(owners, dtype=np.int64)
    pids = np.asarray([records[i].person_id for i in owners], dtype=np.int64)
    return TextTable(tokens, phrases, owners_arr, pids)


def _last_used(mask: np.ndarray) -> int:
    """1 + the last True position of a 1-d mask (at least 1, so shapes never hit zero)."""
    used = np.flatnonzero(mask)
    return int(used[-1]) + 1 if used.size else 1


def _trim_tokens(tokens: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(tokens[:, : _last_used(tokens.any(axis=0))])


def _trim_phrases(phrases: np.ndarray, trim_slots: bool) -> np.ndarray:
    """Drop all-pad word columns and (optionally) phrase slots; phrases are packed at the front."""
    if phrases.shape[1] == 0:
        return np.ascontiguousarray(phrases)
    slots = _last_used(phrases.any(axis=(0, 2))) if trim_slots else phrases.shape[1]
    words = _last_used(phrases.any(axis=(0, 1)))
    return np.ascontiguousarray(phrases[:, :slots, :words])


class ImageReader:
    """Decodes one record's image, augmented for training or plain for evaluation, as uint8
    CHW pixels (normalised later on the model's device by ``prepare_images``)."""

    def __init__(self, size: tuple[int, int], seed: int, train: bool, crop: bool = True):
        self.size, self.seed, self.train, self.crop = size, seed, train, crop

    def __call__(self, path, epoch: int, index: int) -> torch.Tensor:
        try:
            image = load_rgb(path)
        except Exception as exc:  # checked at load time; a file changed since then
            raise MiaError(f"{path}: cannot read image ({exc})") from None
        if self.train:
            rng = random.Random(hash((self.seed, epoch, index)))
            image = augment(image, self.size, rng, self.crop)
        return torch.from_numpy(to_uint8_chw(image, self.size))


class PairDataset(Dataset):
    """Training items: caption ``n`` with its image; indexed by ``(epoch, n)`` pairs."""

    def __init__(self, records: Sequence[Record], table: TextTable, labels: np.ndarray, reader: ImageReader,
                 fixed_shapes: bool = False):
        self.paths = [str(r.image) for r in records]
        self.table, self.labels, self.reader = table, labels, reader
        self.fixed_shapes = fixed_shapes

    def __len__(self) -> int:
        return len(self.table)

    def __getitem__(self, item: tuple[int, int]):
        epoch, n = item
        image = self.reader(self.paths[self.table.record_index[n]], epoch, n)
        return image, n

    def collate(self, batch):
        images = torch.stack([b[0] for b in batch])
        index = np.asarray([b[1] for b in batch], dtype=np.int64)
        tokens, phrases = self.table.batch(index, trim=not self.fixed_shapes)
        labels = torch.from_numpy(self.labels[self.table.record_index[index]])
        return images, tokens, phrases, labels


class GalleryDataset(Dataset):
    """Evaluation images, in record order, without augmentation."""

    def __init__(self, records: Sequence[Record], reader: ImageReader):
        self.paths = [str(r.image) for r in records]
        self.reader = reader

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.reader(self.paths[index], 0, index)


class EpochSampler(Sampler):
    """Shuffles ``n`` items with a generator seeded by (seed, epoch) and shards by rank.

    Yields ``(epoch, index)`` so that workers know the epoch for their augmentation
    without shared state.  Every rank gets the same number of items (padded by wrap-around).
    """

    def __init__(self, n: int, seed: int, rank: int = 0, world_size: int = 1):
        self.n, self.seed, self.rank, self.world_size = n, seed, rank, world_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return -(-self.n // self.world_size)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        order = torch.randperm(self.n, generator=generator).tolist()
        total = len(self) * self.world_size
        order = (order * (total // max(len(order), 1) + 1))[:total]
        return iter((self.epoch, i) for i in order[self.rank::self.world_size])


def person_labels(records: Sequence[Record]) -> tuple[np.ndarray, int]:
    """Per-record class index 0..C-1 for the identity loss, and C."""
    classes = {pid: i for i, pid in enumerate(sorted({r.person_id for r in records}))}
    return np.asarray([classes[r.person_id] for r in records], dtype=np.int64), len(classes)


def make_loader(dataset: Dataset, batch_size: int, workers: int, sampler=None, collate_fn=None,
                drop_last: bool = False, pin_memory: bool = False) -> DataLoader:
    return DataLoader(
        dataset, batch_size=batch_size, sampler=sampler, num_workers=workers,
        collate_fn=collate_fn, drop_last=drop_last, pin_memory=pin_memory,
        persistent_workers=workers > 0, prefetch_factor=4 if workers > 0 else None,
    )
