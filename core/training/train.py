"""The training engine: epochs of in-batch alignment losses, evaluation, checkpoints.

Reproducibility is by construction rather than by saved RNG state: the learning rate is
a function of the step, the sample order of (seed, epoch), the augmentation of
(seed, epoch, index), and the global torch seed is reset to (seed, epoch) at every epoch.
So ``--resume`` from ``last.pt`` gives the same numbers as a run that never stopped.
"""

from __future__ import annotations

import json
import math
import random
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from mia.core.base import atomic
from mia.core.modeling.alignment import LossSettings
from mia.core.modeling.checkpoint import check_weights, checkpoint_tokenizer, load_checkpoint, save_checkpoint
from mia.core.settings.config import TrainConfig
from mia.core.data.loaders import EpochSampler, ImageReader, PairDataset, build_text_table, make_loader, person_labels
from mia.core.runtime.policy import make_policy, resolve_device
from mia.core.runtime.distributed import barrier, init_distributed, local_device, mean_over_ranks
from mia.core.base.errors import MiaError
from mia.core.evaluation.evaluate import evaluate, prepare_split
from mia.core.training.outputs import check_run_dir
from mia.core.modeling.model import MiaModel, ModelSpec, create_model, create_tokenizer
from mia.core.base.progress import Progress, format_seconds
from mia.core.data.phrases import canonical_chunker
from mia.core.data.records import training_dataset
from mia.core.settings.run_config import provenance_lines, write_run_config
from mia.core.settings.stages import active_at, canonical_alignments, plan_stages, resolve_weights
from mia.core.training.step import TrainingStep
from mia.core.training.tensorboard_log import EpochBoard, require_tensorboard
from mia.core.base.version import VERSION


@dataclass
class TrainResult:
    out: Path
    history: list[dict]
    best: dict
    is_main: bool = True  # False on the other torchrun ranks, which print nothing

    @property
    def best_metrics(self) -> dict:
        return self.best["metrics"]


def lr_factor(step: int, warmup_steps: int, total_steps: int) -> float:
    """Linear warm-up to 1, then cosine decay to 0 at ``total_steps``."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def describe_tokenizer(tokenizer) -> str:
    if tokenizer.kind == "words":
        return f"vocabulary {len(tokenizer)} words"
    return f"{tokenizer.kind} tokenizer of {len(tokenizer) - 1} tokens"


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _optimizer(model: MiaModel, config: TrainConfig) -> torch.optim.Optimizer:
    """AdamW (``--optimizer adam``: Adam, whose decay is an L2 term added to the gradient and
    so scaled by Adam's step, as in the public re-implementation); no weight decay on biases
    and norm parameters (1-d tensors); a pretrained
    text tower's own parameters learn at ``--text-lr-mult`` times the rate (fine-tuning a
    language model at the rate of freshly initialised heads would wipe out what it knows).
    Each group keeps its multiplier in ``lr_mult`` for the schedule.  Fused (a few kernels
    for all parameters) on CUDA, where a training step is bound by kernel launches."""
    pretrained = {id(p) for p in getattr(model.text_encoder, "pretrained_parameters", lambda: [])()}
    if config.text_lr_mult == 0:  # frozen: no gradients computed for the tower at all
        for parameter in model.parameters():
            if id(parameter) in pretrained:
                parameter.requires_grad_(False)
        pretrained = set()
    groups = []
    for mult, members in ((1.0, [p for p in model.parameters() if id(p) not in pretrained and p.requires_grad]),
                          (config.text_lr_mult, [p for p in model.parameters() if id(p) in pretrained])):
        for decays in (True, False):
            params = [p for p in members if (p.ndim >= 2) == decays]
            if params:
                groups.append({"params": params, "weight_decay": config.weight_decay if decays else 0.0,
                               "lr": config.lr * mult, "lr_mult": mult})
    optimizer = torch.optim.Adam if config.optimizer == "adam" else torch.optim.AdamW
    return optimizer(groups, lr=config.lr, fused=groups[0]["params"][0].is_cuda)


class Trainer:
    """``Trainer(config).run()`` trains, evaluates each epoch and writes ``config.out``."""

    def __init__(self, config: TrainConfig, resume: bool = False, log=None, origin: dict[str, str] | None = None):
        config.validate()
        self.config = config
        self.out = Path(config.out)
        device = resolve_device(config.device)
        self.context = init_distributed(device)
        self.device = local_device(device, self.context)
        self.policy = make_policy(self.device, config.workers, config.eval_chunk)
        write = log or (lambda message: print(message, file=sys.stderr))
        self.log = write if self.context.is_main else (lambda message: None)
        self.show_progress = self.context.is_main and not config.quiet
        self.origin = origin or {}  # where each config value came from, for config.toml
        self.checkpoint = self._resume_point(resume)

    def _resume_point(self, resume: bool) -> dict | None:
        last = self.out / "last.pt"
        check_run_dir(self.out)
        if not resume:
            if last.exists():
                raise MiaError(f"--out {self.out} already holds a run (last.pt); pass --resume to continue it or choose another --out")
            return None
        if not last.exists():
            raise MiaError(f"--resume: no checkpoint at {last}")
        checkpoint = load_checkpoint(last, resumable=True)
        saved = TrainConfig.from_dict(checkpoint["config"])
        changed = self.config.differences(saved)
        if changed:
            raise MiaError(f"--resume: options differ from the run in {self.out}: {', '.join(changed)}")
        return checkpoint

    # -- set-up -------------------------------------------------------------------------
    def _prepare(self) -> None:
        seed_everything(self.config.seed)
        config = self.config
        if config.tensorboard:
            require_tensorboard()
        dataset = training_dataset(config.data, config.val_share, config.seed, config.select_on_test)
        for note in dataset.notes:
            self.log(f"data: {note}")
        train_records = dataset.split("train")
        self._build_model(train_records)
        settings, chunker = self.model.text_settings(), self.model.chunker
        pairs = self._build_loader(train_records, settings, chunker)
        self.eval_split_name = dataset.eval_split()
        self.eval_split = prepare_split(dataset.split(self.eval_split_name), self.tokenizer, settings, chunker,
                                        dataset.twins)
        self.log(
            f"train: {len(train_records)} images, {len(pairs)} captions, {self.spec.num_classes} identities; "
            f"eval on {self.eval_split_name}: {len(self.eval_split.records)} images, {len(self.eval_split.table)} queries; "
            f"{describe_tokenizer(self.tokenizer)}; device {self.device}; {self.policy.workers} data workers"
            + (f"; {self.context.world_size} processes (DDP)" if self.context.enabled else "")
        )

    def _build_model(self, train_records) -> None:
        """Tokenizer, model spec and model (as saved in ``last.pt`` when resuming), optimizer."""
        config = self.config
        self.labels, num_classes = person_labels(train_records)
        align = canonical_alignments(config.align)
        self.stages = plan_stages(config.stages, align, config.epochs)
        self.alignment_loss_weights = resolve_weights(config.loss_weights, align, "--loss-weights")
        if self.checkpoint is not None:  # the same tokenizer and architecture; weights come from last.pt
            self.tokenizer = checkpoint_tokenizer(self.checkpoint, self.out / "last.pt")
            self.spec = ModelSpec.from_dict(self.checkpoint["spec"])
            self.model = create_model(self.spec).to(self.device)
        else:
            captions = [c for r in train_records for c in r.captions]
            self.tokenizer = create_tokenizer(config.text_encoder, captions, config.min_word_freq, config.text_weights)
            self.spec = ModelSpec(
                image_encoder=config.image_encoder, text_encoder=config.text_encoder, alignments=align,
                weights=resolve_weights(config.weights, align, "--weights"), embed_dim=config.embed_dim,
                num_parts=config.num_parts, image_size=config.image_size, vocab_size=len(self.tokenizer),
                phrase_encoding=config.phrase_encoding, num_classes=num_classes, max_words=config.max_words,
                max_phrases=config.max_phrases, phrase_words=config.phrase_words,
                chunker=canonical_chunker(config.chunker), rga_temperature=config.rga_temperature,
                rga_mlp=config.rga_mlp, id_classifier=config.id_classifier, image_heads=config.image_heads,
            )
            self.model = create_model(self.spec, config.image_weights, config.text_weights).to(self.device)
        if self.policy.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        if config.frozen_trunk_epochs and not isinstance(getattr(self.model.image_encoder, "trunk", None),
                                                         torch.nn.Module):
            raise MiaError(f"--frozen-trunk-epochs: the image encoder '{config.image_encoder}' has no 'trunk' "
                           "module to freeze")
        self.optimizer = _optimizer(self.model, config)
        self.loss_settings = LossSettings(config.margin, config.id_weight, config.ranking_negatives, config.id_features)
        first = self.stages[0].alignments
        if config.identity_epochs and not any(self.model.alignments[name].has_identity_features
                                              and self.loss_settings.classifies(name) for name in first):
            raise MiaError(f"--identity-epochs: the first epochs train {', '.join(first)}, which give the identity "
                           "loss nothing to classify (global does)")
        self.step = TrainingStep(self._wrapped(), self.optimizer, self.device, self.loss_settings,
                                 (self.spec.image_mean, self.spec.image_std))

    def _wrapped(self) -> torch.nn.Module:
        """The model as trained: under DDP wrapped by it, compiled where asked.  DDP
        records which parameters train when it wraps, so a change of that set (the trunk
        thawing after ``--frozen-trunk-epochs``) wraps the model again."""
        train_model = self.model
        if self.context.enabled:
            train_model = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                find_unused_parameters=True)  # stages leave later alignments unused
        if self.config.compile:  # evaluation keeps the plain model: other shapes, no backward
            train_model = torch.compile(train_model, mode=self.config.compile)
        return train_model

    def _enter_epoch(self, epoch: int) -> None:
        """What ``epoch`` trains, beyond its stage's alignments: the image trunk stays
        frozen for the first ``--frozen-trunk-epochs`` (no gradient reaches it, so its
        backward is skipped too; its batch norms still track the data, as in the public
        MIA re-implementation) and the first ``--identity-epochs`` train the identity loss
        alone.  A function of the epoch, so a resumed run trains as an unbroken one."""
        config = self.config
        if config.frozen_trunk_epochs:
            trunk = self.model.image_encoder.trunk
            thawed = epoch >= config.frozen_trunk_epochs
            if any(p.requires_grad != thawed for p in trunk.parameters()):
                trunk.requires_grad_(thawed)
                if self.context.enabled:
                    self.step.forward = self._wrapped()
        self.step.settings = replace(self.loss_settings, ranks=epoch >= config.identity_epochs)

    def _build_loader(self, train_records, settings, chunker) -> PairDataset:
        """(image, caption) pairs, sharded by rank, decoded and augmented in workers."""
        config = self.config
        table = build_text_table(train_records, self.tokenizer, settings, chunker)
        reader = ImageReader(self.spec.image_size, config.seed, train=True, crop=config.augment == "flip-crop")
        # a compiled step wants one shape (a CUDA graph is recorded per shape): no trimming
        pairs = PairDataset(train_records, table, self.labels, reader, fixed_shapes=config.compile is not None)
        if len(pairs) < config.batch_size:
            raise MiaError(f"--batch-size {config.batch_size}: the training split has only {len(pairs)} captions")
        self.sampler = EpochSampler(len(pairs), config.seed, self.context.rank, self.context.world_size)
        self.loader = make_loader(pairs, config.batch_size, self.policy.workers, self.sampler, pairs.collate,
                                  drop_last=True, pin_memory=self.device.type == "cuda")
        self.steps_per_epoch = len(self.loader)
        self.total_steps = self.steps_per_epoch * config.epochs
        self.warmup_steps = max(1, int(config.warmup_epochs * self.steps_per_epoch))
        return pairs

    def _describe(self) -> None:
        """Where each setting came from (when the command line said), then the execution policy."""
        for line in provenance_lines(self.config, self.origin) if self.origin else []:
            self.log(line)
        self.log(self.policy.describe())

    # -- rehearsal ----------------------------------------------------------------------
    def rehearse(self, steps: int = 3) -> dict:
        """``--dry-run``: build everything at full size, time ``steps`` training steps (after
        one that warms up) and an evaluation of a sample of the eval split, and project an
        epoch and the whole run from them; nothing is written."""
        with self.policy.active():
            self._prepare()
            self._describe()
            self.model.active = list(self.stages[-1].alignments)  # the costliest stage
            self.model.train()
            batches = iter(self.loader)
            timed = min(steps, self.steps_per_epoch - 1)
            for n in range(timed + 1):
                if n == 1:
                    started = time.perf_counter()
                self.step(*next(batches), self.loss_weights(self.model.active))
            self.step.flush()
            step_seconds = (time.perf_counter() - started) / max(timed, 1)
            del batches
            people = sorted(set(self.eval_split.query_pids.tolist()))
            sample = set(people[:max(1, len(people) // 10)])
            subset = prepare_split([r for r in self.eval_split.records if r.person_id in sample], self.tokenizer,
                                   self.model.text_settings(), self.model.chunker, [])
            started = time.perf_counter()
            evaluate(self.model, subset, self.device, self.policy.eval_chunk, self.policy.workers, show_progress=False)
            eval_seconds = (time.perf_counter() - started) * len(self.eval_split.records) / len(subset.records)
        epoch_seconds = step_seconds * self.steps_per_epoch + eval_seconds
        return {"step_seconds": step_seconds, "steps_per_epoch": self.steps_per_epoch, "eval_seconds": eval_seconds,
                "epoch_seconds": epoch_seconds, "run_seconds": epoch_seconds * self.config.epochs,
                "peak_memory_bytes": peak_memory(self.device), "device": str(self.device)}

    # -- loop ---------------------------------------------------------------------------
    def run(self) -> TrainResult:
        with self.policy.active():
            return self._run()

    def _run(self) -> TrainResult:
        self._prepare()  # bad input fails before anything is printed
        self._describe()
        start_epoch, history, best = 0, [], {"epoch": 0, "metrics": None}
        if self.checkpoint is not None:
            self._restore()
            start_epoch, history, best = self.checkpoint["epoch"], self.checkpoint["history"], self.checkpoint["best"]
            self.log(f"resuming {self.out} after epoch {start_epoch}")
        self.out.mkdir(parents=True, exist_ok=True)
        if self.context.is_main and self.checkpoint is None:  # a resumed run keeps the file it started with
            write_run_config(self.out, self.config, self.origin)
        board = EpochBoard(self.out) if self.config.tensorboard and self.context.is_main else None
        last_epoch = self.config.epochs
        if self.config.stop_after is not None:
            last_epoch = min(last_epoch, start_epoch + self.config.stop_after)
        final_stage = self.stages[-1]
        for epoch in range(start_epoch, last_epoch):
            stage = active_at(self.stages, epoch)
            self.model.active = list(stage.alignments)
            record = self._train_epoch(epoch)
            started = time.perf_counter()
            metrics = evaluate(self.model, self.eval_split, self.device, self.policy.eval_chunk,
                               self.policy.workers, show_progress=self.show_progress, context=self.context)
            record.update({"split": self.eval_split_name, **metrics, "eval_seconds": round(time.perf_counter() - started, 2)})
            history.append(record)
            # the best model is chosen among epochs that train every requested alignment, ranking included
            selectable = stage == final_stage and epoch >= self.config.identity_epochs
            improved = selectable and (best["metrics"] is None or self._ranking(metrics) > self._ranking(best["metrics"]))
            if improved:
                best = {"epoch": epoch + 1, "metrics": metrics}
            if self.context.is_main:
                self._save(epoch + 1, history, best, improved)
                if board is not None:
                    board.write(record)
            barrier(self.context)
            self.log(self._epoch_line(record, improved))
        if board is not None:
            board.close()
        return TrainResult(self.out, history, best, self.context.is_main)

    def _ranking(self, metrics: dict) -> tuple[float, float]:
        """``--select-by`` first, the other of R1/mAP to break ties."""
        first = self.config.select_by
        return metrics[first], metrics["mAP" if first == "R1" else "R1"]

    def _restore(self) -> None:
        """Weights and optimizer state from ``last.pt``, each checked against this model first."""
        last, checkpoint = self.out / "last.pt", self.checkpoint
        check_weights(self.model.state_dict(), checkpoint["model"], last, self.spec, checkpoint.get("mia_version", "?"))
        self.model.load_state_dict(checkpoint["model"])
        try:
            self.optimizer.load_state_dict(checkpoint["optimizer"])
        except (ValueError, KeyError, TypeError, RuntimeError) as exc:
            raise MiaError(f"{last}: its optimizer state does not fit this model "
                           f"({type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''})") from None

    def _train_epoch(self, epoch: int) -> dict:
        config, model = self.config, self.model
        model.train()
        self._enter_epoch(epoch)
        self.sampler.set_epoch(epoch)
        torch.manual_seed(config.seed * 100_003 + epoch)
        active = model.active
        totals: dict[str, float] = {}
        started = time.perf_counter()
        label = f"epoch {epoch + 1}/{config.epochs}"
        waited, asked = 0.0, started  # seconds blocked on the loader: what separates an epoch from bench_train
        with Progress(self.steps_per_epoch, label, unit="batch", enabled=self.show_progress) as bar:
            start, span = self._schedule_span(epoch)
            for i, (images, tokens, phrases, labels) in enumerate(self.loader):
                waited += time.perf_counter() - asked
                step = epoch * self.steps_per_epoch + i - start
                for group in self.optimizer.param_groups:
                    group["lr"] = config.lr * group.get("lr_mult", 1.0) * lr_factor(step, self.warmup_steps, span)
                done = self.step(images, tokens, phrases, labels, self.loss_weights(active))
                bar.update(**self._tally(done, totals))
                asked = time.perf_counter()
            self._tally(self.step.flush(), totals)
        seconds = time.perf_counter() - started
        images = self.steps_per_epoch * config.batch_size * self.context.world_size
        record = {"epoch": epoch + 1, "alignments": list(active), "lr": self.optimizer.param_groups[0]["lr"],
                  "train_seconds": round(seconds, 2), "data_seconds": round(waited, 2),
                  "images_per_second": round(images / seconds, 1)}
        averages = mean_over_ranks({name: total / self.steps_per_epoch for name, total in totals.items()}, self.context)
        record.update({name: round(value, 5) for name, value in averages.items()})
        return record

    def _schedule_span(self, epoch: int) -> tuple[int, int]:
        """(first step, steps) of the learning-rate schedule that ``epoch`` belongs to: the
        whole run, or with ``--stage-schedule restart`` the epoch's stage of ``--stages``,
        which then warms up and decays on its own (as the public MIA re-implementation's
        stages each start their optimiser afresh)."""
        if self.config.stage_schedule != "restart":
            return 0, self.total_steps
        first = 0
        for stage in self.stages:
            if epoch < first + stage.epochs:
                return first * self.steps_per_epoch, stage.epochs * self.steps_per_epoch
            first += stage.epochs
        return 0, self.total_steps

    def loss_weights(self, active) -> dict[str, float]:
        return {name: self.alignment_loss_weights.get(name, 1.0) for name in active}

    def _tally(self, losses: dict[str, float] | None, totals: dict[str, float]) -> dict[str, float]:
        """Add a step's losses (read one step late, see ``core.step``) to the epoch's totals."""
        if losses is None:
            return {}
        if not math.isfinite(losses["loss"]):
            raise MiaError(f"training diverged (loss {losses['loss']}); lower --lr (now {self.config.lr})")
        for name, value in losses.items():
            totals[name] = totals.get(name, 0.0) + value
        return {"loss": losses["loss"]}

    # -- output -------------------------------------------------------------------------
    def _save(self, epoch: int, history: list[dict], best: dict, improved: bool) -> None:
        payload = {
            "mia_version": VERSION, "spec": self.spec.to_dict(), "config": self.config.to_dict(),
            "tokenizer": self.tokenizer.to_dict(), "model": self.model.state_dict(), "active": list(self.model.active), "epoch": epoch,
            "history": history, "best": best,
        }
        save_checkpoint(self.out / "last.pt", {**payload, "optimizer": self.optimizer.state_dict()})
        if improved:
            save_checkpoint(self.out / "best.pt", payload)
        atomic.write_text(self.out / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in history))

    def _epoch_line(self, record: dict, improved: bool) -> str:
        metrics = " ".join(f"{k} {record[k]:.2f}" for k in ("R1", "R5", "R10", "mAP", "mINP"))
        eta = (self.config.epochs - record["epoch"]) * (record["train_seconds"] + record["eval_seconds"])
        return (f"epoch {record['epoch']}/{self.config.epochs} [{'+'.join(record['alignments'])}] loss {record['loss']:.4f} | "
                f"{record['split']} {metrics}{' (best)' if improved else ''} | ETA {format_seconds(eta)}")


def peak_memory(device: torch.device) -> int:
    """The most memory this process has held: the GPU's allocations on CUDA, else the
    process's resident set (Linux reports ru_maxrss in KiB)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device)
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def train(config: TrainConfig, resume: bool = False, log=None, origin: dict[str, str] | None = None) -> TrainResult:
    """Train ``config`` into ``config.out``; ``origin`` (field -> where its value came from)
    annotates the run's config.toml."""
    return Trainer(config, resume=resume, log=log, origin=origin).run()
