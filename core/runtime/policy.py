"""The execution policy: where and how mia runs, decided here and nowhere else.

* device: ``--device auto`` takes CUDA when present;
* precision: bf16 autocast on CUDA (the speed path), exact fp32 on the CPU (reproducible);
  ``MIA_PRECISION=fp32`` or ``bf16`` sets it on either;
* memory layout: channels_last on CUDA;
* data workers: ``--workers``, else ``MIA_WORKERS``, else cores-1, capped by
  ``config.WORKER_CAP`` (few on the CPU, where the same cores run the model; enough on a
  GPU to keep its step fed);
* scoring chunk: ``--eval-chunk``, else ``MIA_EVAL_CHUNK``, else ``config.EVAL_CHUNK`` for
  the device (larger on a GPU, where fewer chunks amortise the kernel launches that bind
  scoring);
* fused kernels: the Triton pooling kernels of :mod:`mia.core.runtime.fused_pool` for scoring on
  CUDA, unless ``MIA_FUSED_KERNELS=0``; they are never used while autograd, tracing, ONNX
  export or ``torch.compile`` needs the plain operations (:func:`plain_ops`).

``train`` and ``eval`` print the policy once (:meth:`Policy.describe`) and run inside
:meth:`Policy.active`; benchmarks make their variants with :func:`make_policy` instead of
patching module globals.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import os
from dataclasses import dataclass, replace

import torch

from mia.core.runtime import fused_pool
from mia.core.settings.config import DEVICES, EVAL_CHUNK, WORKER_CAP
from mia.core.base.errors import MiaError
from mia.core.data.preprocess import IMAGENET_MEAN, IMAGENET_STD

PRECISIONS = ("bf16", "fp32")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise MiaError(f"--device {name}: CUDA is not available on this machine (use --device cpu or auto)")
        return torch.device(name)
    if name == "cpu":
        return torch.device("cpu")
    raise MiaError(f"--device {name}: expected one of {', '.join(DEVICES)}")


@dataclass(frozen=True)
class Policy:
    device: torch.device
    precision: str
    workers: int
    eval_chunk: int
    fused_kernels: bool

    @property
    def channels_last(self) -> bool:
        return self.device.type == "cuda"

    def describe(self) -> str:
        precision = "bf16 autocast" if self.precision == "bf16" else "fp32"
        layout = ", channels_last" if self.channels_last else ""
        fused = ", fused scoring kernels" if self.fused_kernels else ""
        return (f"policy: device {self.device}, {precision}{layout}, {self.workers} data workers, "
                f"scoring {self.eval_chunk} queries at a time{fused}")

    def autocast(self):
        if self.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    @contextlib.contextmanager
    def active(self):
        """Make this the policy that device-agnostic code (autocast, attention pooling) follows."""
        token = _ACTIVE.set(self)
        try:
            yield self
        finally:
            _ACTIVE.reset(token)

    def with_(self, **changes) -> "Policy":
        return replace(self, **changes)


_ACTIVE: contextvars.ContextVar[Policy | None] = contextvars.ContextVar("mia_policy", default=None)


def _environment_int(name: str) -> int | None:
    value = os.environ.get(name)
    if value in (None, ""):
        return None
    try:
        number = int(value)
    except ValueError:
        raise MiaError(f"{name}={value!r}: expected a non-negative integer") from None
    if number < 0:
        raise MiaError(f"{name}={value!r}: expected a non-negative integer")
    return number


def _environment_flag(name: str, default: bool) -> bool:
    value = os.environ.get(name, "").strip().lower()
    if value == "":
        return default
    if value in ("0", "false", "no", "off"):
        return False
    if value in ("1", "true", "yes", "on"):
        return True
    raise MiaError(f"{name}={value!r}: expected 0 or 1")


def make_policy(device: torch.device, workers: int | None = None, eval_chunk: int | None = None,
                precision: str | None = None, fused_kernels: bool | None = None) -> Policy:
    """The policy for ``device``: explicit arguments (command-line options) first, then the
    ``MIA_*`` environment variables, then the defaults of the module docstring."""
    cuda = device.type == "cuda"
    if workers is None:
        workers = _environment_int("MIA_WORKERS")
    if workers is None:
        cores = os.cpu_count() or 1
        workers = min(WORKER_CAP["cuda"], max(cores - 1, 1)) if cuda else min(WORKER_CAP["cpu"], max(cores - 1, 0))
    if eval_chunk is None:
        eval_chunk = _environment_int("MIA_EVAL_CHUNK") or EVAL_CHUNK[device.type if cuda else "cpu"]
    precision = precision or os.environ.get("MIA_PRECISION") or ("bf16" if cuda else "fp32")
    if precision not in PRECISIONS:
        raise MiaError(f"MIA_PRECISION={precision!r}: expected one of {', '.join(PRECISIONS)}")
    if fused_kernels is None:
        fused_kernels = _environment_flag("MIA_FUSED_KERNELS", default=True)
    return Policy(device, precision, workers, eval_chunk, fused_kernels and cuda and fused_pool.available)


def current(device: torch.device) -> Policy:
    """The active policy, or the default one for ``device`` (code called outside train/eval)."""
    active = _ACTIVE.get()
    return active if active is not None and active.device.type == device.type else make_policy(device)


def autocast(device: torch.device):
    """The precision of the active policy on ``device`` (bf16 on CUDA, none on the CPU by default)."""
    return current(device).autocast()


def needs_autograd(*tensors: torch.Tensor) -> bool:
    return torch.is_grad_enabled() and any(t.requires_grad for t in tensors)


def plain_ops(*tensors: torch.Tensor) -> bool:
    """Nothing needs a gradient, and nothing is being traced, exported or compiled: only then
    may fused kernels (no backward, no ONNX or Inductor form) replace plain operations."""
    if needs_autograd(*tensors):
        return False
    return not (torch.jit.is_tracing() or torch.onnx.is_in_onnx_export() or torch.compiler.is_compiling())


def fused_kernels(*tensors: torch.Tensor) -> bool:
    """Whether attention pooling runs as the fused Triton kernels for these tensors."""
    return (fused_pool.available and tensors[0].is_cuda and current(tensors[0].device).fused_kernels
            and plain_ops(*tensors))


def prepare_images(images: torch.Tensor, device: torch.device, mean=IMAGENET_MEAN, std=IMAGENET_STD) -> torch.Tensor:
    """uint8 ``[B, 3, H, W]`` pixels from the loader -> the model's normalised fp32 input on
    ``device`` (``mean``/``std``: the image encoder's): a quarter of the bytes cross to the
    GPU, and the loader workers skip the float maths, a large share of their work.  Same
    arithmetic as ``normalize_array``."""
    if images.dtype != torch.uint8:
        raise TypeError(f"prepare_images expects uint8 pixels, got {images.dtype}")
    images = images.to(device, non_blocking=True)
    if device.type == "cuda":
        images = images.contiguous(memory_format=torch.channels_last)
    mean, std = _mean_std(device, tuple(mean), tuple(std))
    return (images.float() / 255.0 - mean) / std


@functools.lru_cache(maxsize=None)
def _mean_std(device: torch.device, mean: tuple, std: tuple) -> tuple[torch.Tensor, torch.Tensor]:
    """The normalisation constants on ``device``, made once: not a host-to-device copy per batch."""
    shape = (1, 3, 1, 1)
    return torch.tensor(mean, device=device).view(shape), torch.tensor(std, device=device).view(shape)
