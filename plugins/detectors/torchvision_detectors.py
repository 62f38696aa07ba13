"""torchvision's COCO detectors, keeping the ``person`` class.

Their weights come from the torch hub cache like ``--image-weights`` (fetched there when
the machine may go online; offline and missing, one line names the file and the folder).
``NAME:FILE`` loads a local state dict instead, and ``NAME:random`` builds the network
untrained: it detects nothing useful, and is there to time the network where its
weights cannot be had.
"""

from __future__ import annotations

import numpy as np
import torch
import torchvision

from mia.core.modeling.checkpoint import read_torch_file
from mia.core.modeling.pretrained import cache_path, fetch_url
from mia.core.runtime.policy import resolve_device

COCO_PERSON = 1
MIN_SCORE = 0.5


class TorchvisionDetector:
    def __init__(self, name: str, builder: str, option: str | None, device: str):
        self.device = resolve_device(device)
        builder_fn = getattr(torchvision.models.detection, builder)
        self.model = builder_fn(weights=None, weights_backbone=None)
        source = option or "coco"
        if option != "random":
            if option is None:
                weights = torchvision.models.get_model_weights(builder).DEFAULT
                file = cache_path(weights)
                if not file.is_file():
                    fetch_url(weights.url, file, f"--detector {name}")
            else:
                file = option
            self.model.load_state_dict(read_torch_file(file, f"--detector {name}:{option or ''} ({file})"))
        self.model.eval().to(self.device)
        self.settings = {"name": name, "weights": source, "min_score": MIN_SCORE}

    @torch.inference_mode()
    def detect(self, frame: np.ndarray) -> np.ndarray:
        """``[N, 5]`` float32: x1, y1, x2, y2 and the detector's confidence, people only."""
        image = torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1).to(self.device).float() / 255
        found = self.model([image])[0]
        keep = (found["labels"] == COCO_PERSON) & (found["scores"] >= MIN_SCORE)
        boxes = torch.cat([found["boxes"][keep], found["scores"][keep, None]], dim=1)
        return boxes.cpu().numpy().astype(np.float32)


def ssdlite(option: str | None, device: str = "cpu") -> TorchvisionDetector:
    return TorchvisionDetector("ssdlite", "ssdlite320_mobilenet_v3_large", option, device)


def fasterrcnn(option: str | None, device: str = "cpu") -> TorchvisionDetector:
    return TorchvisionDetector("fasterrcnn", "fasterrcnn_mobilenet_v3_large_fpn", option, device)
