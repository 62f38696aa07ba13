"""One optimisation step of a mia model, shared by the trainer and the training benchmark,
so that the benchmark times the step that training runs.

The losses are read back one step late.  Reading a loss on the host (``.item()``, ``if
not isfinite``) waits for the GPU to finish everything queued before it; done right after
each step is queued, the GPU then idles while the CPU launches the next one, and a
launch-bound step (a mia step launches thousands of small kernels) loses what overlap it had.
So step n's losses are copied to pinned memory without waiting and read once step n+1
is queued: the CPU waits only for work the GPU has already had time to do.
"""

from __future__ import annotations

import torch

from mia.core.modeling.alignment import LossSettings
from mia.core.runtime.policy import autocast, prepare_images
from mia.core.data.preprocess import IMAGENET_MEAN, IMAGENET_STD


class TrainingStep:
    """``step(images, tokens, phrases, labels, loss_weights)`` runs forward, backward and the
    optimizer update of a batch and returns the previous batch's losses (``None`` after the
    first); ``flush()`` returns the last batch's.  ``forward`` is the model as trained: the
    model itself, its DistributedDataParallel wrapper or a compiled form of either."""

    def __init__(self, forward, optimizer: torch.optim.Optimizer, device: torch.device,
                 settings: LossSettings = LossSettings(), normalisation: tuple = (IMAGENET_MEAN, IMAGENET_STD)):
        self.forward, self.optimizer, self.device, self.settings = forward, optimizer, device, settings
        self.mean, self.std = normalisation  # the image encoder's
        self._pending = None

    def __call__(self, images, tokens, phrases, labels, loss_weights: dict[str, float]) -> dict[str, float] | None:
        device = self.device
        with autocast(device):
            losses = self.forward(prepare_images(images, device, self.mean, self.std), tokens.to(device, non_blocking=True),
                                  phrases.to(device, non_blocking=True), labels.to(device, non_blocking=True),
                                  loss_weights, self.settings)
        loss = torch.stack(list(losses.values())).sum()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        previous = self.flush()
        values = torch.stack([loss.detach(), *(value.detach() for value in losses.values())]).float()
        event = None
        if device.type == "cuda":
            host = torch.empty(values.shape, dtype=values.dtype, pin_memory=True)
            values = host.copy_(values, non_blocking=True)  # into pinned memory, without waiting
            event = torch.cuda.Event()
            event.record()
        self._pending = (["loss", *losses], values, event)
        return previous

    def flush(self) -> dict[str, float] | None:
        """The losses of the last step not yet returned (waiting for it if need be)."""
        if self._pending is None:
            return None
        names, values, event = self._pending
        self._pending = None
        if event is not None:
            event.synchronize()
        return dict(zip(names, values.tolist()))
