"""Evaluation: encode the gallery and the queries once, score Q x G in chunks, rank.

Scoring goes through :func:`score_chunks`, which bounds memory by ``chunk`` queries at a
time whatever the alignment, so a benchmark's whole test split fits anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from mia.core.evaluation.intervals import QueryOutcomes, query_outcomes, standard_errors
from mia.core.modeling.checkpoint import load_checkpoint, model_from_checkpoint
from mia.core.settings.config import TrainConfig
from mia.core.data.loaders import GalleryDataset, ImageReader, TextSettings, TextTable, build_text_table, make_loader
from mia.core.runtime.policy import autocast, current, make_policy, prepare_images, resolve_device
from mia.core.runtime.distributed import DistContext, gather_rows
from mia.core.modeling.features import ImageFeatures, TextFeatures, select_texts
from mia.core.evaluation.metrics import METRIC_NAMES, retrieval_metrics
from mia.core.modeling.model import MiaModel
from mia.core.base.progress import Progress
from mia.core.data.records import Record, load_dataset, training_dataset
from mia.core.settings.stages import resolve_weights


@dataclass
class EvalSplit:
    """One split ready to evaluate: gallery records, every caption as a query, and the data
    set's look-alike pairs of people (for twin accuracy)."""

    records: list[Record]
    table: TextTable
    twins: Sequence[tuple[int, int]] = ()

    @property
    def gallery_pids(self) -> np.ndarray:
        return np.asarray([r.person_id for r in self.records], dtype=np.int64)

    @property
    def query_pids(self) -> np.ndarray:
        return self.table.person_ids


def prepare_split(records: Sequence[Record], tokenizer, settings: TextSettings,
                  chunker_spec: str | None, twins: Sequence[tuple[int, int]] = ()) -> EvalSplit:
    return EvalSplit(list(records), build_text_table(records, tokenizer, settings, chunker_spec), twins)


@torch.no_grad()
def encode_gallery(model: MiaModel, records: Sequence[Record], device: torch.device,
                   batch_size: int = 128, workers: int = 0, show_progress: bool = True) -> ImageFeatures:
    reader = ImageReader(model.spec.image_size, seed=0, train=False)
    loader = make_loader(GalleryDataset(records, reader), batch_size, workers, pin_memory=device.type == "cuda")
    globals_, parts = [], []
    with Progress(len(loader), "encode images", unit="batch", enabled=show_progress) as bar:
        for images in loader:
            with autocast(device):
                features = model.encode_image(prepare_images(images, device, model.spec.image_mean, model.spec.image_std))
            globals_.append(features.global_.float())
            parts.append(features.parts.float())
            bar.update()
    return ImageFeatures(torch.cat(globals_), torch.cat(parts))


@torch.no_grad()
def encode_queries(model: MiaModel, table: TextTable, device: torch.device, batch_size: int = 512,
                   rows: np.ndarray | None = None, show_progress: bool = False) -> TextFeatures:
    """Features of the captions ``rows`` of ``table`` (default: all)."""
    rows = np.arange(len(table)) if rows is None else rows
    outputs = []
    starts = range(0, len(rows), batch_size)
    with Progress(len(starts), "encode captions", unit="batch", enabled=show_progress) as bar:
        for start in starts:
            tokens, phrases = table.batch(rows[start:start + batch_size], trim_slots=False)
            with autocast(device):
                features = model.encode_text(tokens.to(device), phrases.to(device))
            outputs.append(TextFeatures(features.global_.float(), features.phrases.float(), features.phrase_mask))
            bar.update()
    return TextFeatures(*(torch.cat(parts) for parts in zip(*outputs)))


@torch.no_grad()
def score_chunks(model: MiaModel, text: TextFeatures, image: ImageFeatures, chunk: int | None = None,
                 names=None, score=None, show_progress: bool = False) -> torch.Tensor:
    """Fused ``[Q, G]`` similarity (CPU, fp32), ``chunk`` queries at a time (default: the
    policy's, see :mod:`mia.core.runtime.policy`), against a gallery side prepared once
    (:meth:`MiaModel.prepare_gallery`).

    On CUDA each chunk's rows are copied into pinned host memory without waiting, so the
    transfer of chunk n overlaps the scoring of chunk n+1 and the GPU never idles on a
    per-chunk sync.  ``score`` replaces ``model.score_prepared`` (a compiled one, say).
    """
    score = score or model.score_prepared
    device = image.global_.device
    chunk = chunk or current(device).eval_chunk
    gallery = model.prepare_gallery(image, names)
    out = torch.empty(len(text.global_), len(image.global_), pin_memory=device.type == "cuda")
    starts = range(0, len(text.global_), chunk)
    label = f"score {'+'.join(names)}" if names else "score"
    with Progress(len(starts), label, unit="chunk", enabled=show_progress) as bar:
        for start in starts:
            part = select_texts(text, slice(start, start + chunk))
            with autocast(device):
                scores = score(part, gallery)
            out[start:start + len(part.global_)].copy_(scores, non_blocking=True)
            bar.update()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return out


@torch.no_grad()
def split_similarities(model: MiaModel, split: EvalSplit, device: torch.device, chunk: int | None = None,
                       workers: int = 0, batch_size: int = 128, show_progress: bool = True,
                       context: DistContext = DistContext(), scorings: dict | None = None) -> dict[str, np.ndarray]:
    """``[queries, gallery]`` similarities of ``split``, one per scoring (name -> alignment
    list, None = the model's fused active alignments), all from one encoding pass.

    Under torchrun each rank encodes every ``world_size``-th image and caption; gallery
    features and similarity rows are gathered so every rank returns the full matrices.
    The model is left in eval mode.
    """
    model.eval()
    shard = slice(context.rank, None, context.world_size)
    gallery_rows = torch.arange(len(split.records))[shard]
    show_progress = show_progress and context.is_main
    image = encode_gallery(model, split.records[shard], device, batch_size, workers, show_progress)
    image = ImageFeatures(*gather_rows(list(image), gallery_rows, len(split.records), context))
    query_rows = np.arange(len(split.table))[shard]
    text = encode_queries(model, split.table, device, rows=query_rows, show_progress=show_progress)
    return {key: gather_rows([score_chunks(model, text, image, chunk, names, show_progress=show_progress)],
                             torch.from_numpy(query_rows), len(split.table), context)[0].numpy()
            for key, names in (scorings or {"fused": None}).items()}


def evaluate(model: MiaModel, split: EvalSplit, device: torch.device, chunk: int | None = None,
             workers: int = 0, batch_size: int = 128, show_progress: bool = True,
             context: DistContext = DistContext()) -> dict[str, float]:
    """R1/R5/R10/mAP/mINP of ``model`` on ``split``, with the standard error of R1 and mAP
    from a bootstrap over people (``R1_se``, ``mAP_se``) and twin accuracy where the data
    set declares twins: how far an epoch's number can be trusted."""
    similarity = split_similarities(model, split, device, chunk, workers, batch_size, show_progress, context)["fused"]
    outcomes = query_outcomes(similarity, split.query_pids, split.gallery_pids, split.twins)
    metrics = {m: outcomes.mean(m) for m in METRIC_NAMES}
    metrics.update(standard_errors(outcomes, ("R1", "mAP")))
    if split.twins:
        metrics["twin"] = outcomes.mean("twin")
    return metrics


@dataclass
class CheckpointEvaluation:
    metrics: dict[str, float]
    split: EvalSplit
    model: MiaModel
    similarity: np.ndarray  # [queries, gallery], for result pages
    components: dict[str, dict[str, float]]  # each alignment scoring alone (when asked for)
    outcomes: QueryOutcomes  # per query: intervals, paired comparisons, twin accuracy; ``metrics`` are their means
    selected_on_test: bool = False  # the run picked its epoch on test (no val, --select-on-test)


def evaluate_checkpoint(checkpoint_path, data_spec: str | None = None, split: str = "test",
                        device: str = "auto", chunk: int | None = None, workers: int | None = None,
                        show_progress: bool = True, log=None, components: bool = False,
                        weights: dict[str, float] | None = None) -> CheckpointEvaluation:
    """Load a checkpoint and evaluate it on ``split`` of ``data_spec`` (default: its training data).

    ``components=True`` also scores with each of a multi-alignment model's alignments
    alone, from the same features: how much each granularity contributes to the fusion.
    ``weights`` overrides some of the checkpoint's fusion weights (choose them on val).
    """
    payload = load_checkpoint(checkpoint_path)
    config = TrainConfig.from_dict(payload["config"])
    model, tokenizer = model_from_checkpoint(payload, checkpoint_path)
    if weights:
        model.spec.weights = {**model.spec.weights, **resolve_weights(weights, model.active)}
    policy = make_policy(resolve_device(device), workers, chunk)
    # the run's own data as the run saw it (a carved val split included); other data as it is
    dataset = (load_dataset(data_spec) if data_spec else
               training_dataset(config.data, config.val_share, config.seed, config.select_on_test))
    eval_split = prepare_split(dataset.split(split), tokenizer, model.text_settings(), model.chunker, dataset.twins)
    if log:  # after the data's checks: bad input fails before anything is printed
        log(policy.describe())
        for note in dataset.notes:
            log(f"data: {note}")
    torch_device = policy.device
    model.to(torch_device)
    scorings = {"fused": None}
    if components and len(model.active) > 1:
        scorings.update({name: [name] for name in model.active})
    with policy.active():
        similarities = split_similarities(model, eval_split, torch_device, policy.eval_chunk, policy.workers,
                                          show_progress=show_progress, scorings=scorings)
    fused = similarities.pop("fused")
    # the fused scores are ranked once: their metrics are the means of the per-query outcomes
    outcomes = query_outcomes(fused, eval_split.query_pids, eval_split.gallery_pids, eval_split.twins)
    components = {key: retrieval_metrics(sim, eval_split.query_pids, eval_split.gallery_pids)
                  for key, sim in similarities.items()}
    return CheckpointEvaluation({m: outcomes.mean(m) for m in METRIC_NAMES}, eval_split, model, fused, components,
                                outcomes, config.select_on_test and not dataset.has_split("val"))
