"""Built-in person detectors, registered through ``register_person_detectors``.

Registered by ``"module:attribute"`` so that listing them imports neither OpenCV nor
torch: ``hog`` and ``motion`` need the ``video`` extra (OpenCV), the torchvision ones the
``train`` extra (torch, torchvision) and their COCO weights in the torch hub cache.
"""

from __future__ import annotations

from mia.core.registry.hookspecs import hookimpl


@hookimpl
def register_person_detectors(register):
    register("motion", "mia.plugins.detectors.motion:motion_detector",
             description="moving regions against a learned background (OpenCV MOG2; a fixed camera, no weights)")
    register("hog", "mia.plugins.detectors.hog:hog_detector",
             description="OpenCV's HOG + linear SVM people detector (no weights; people at least 96 pixels high)")
    register("ssdlite", "mia.plugins.detectors.torchvision_detectors:ssdlite",
             description="torchvision SSDlite320 MobileNetV3 (COCO weights from the torch hub cache; ssdlite:FILE)")
    register("fasterrcnn", "mia.plugins.detectors.torchvision_detectors:fasterrcnn",
             description="torchvision Faster R-CNN MobileNetV3-Large FPN (COCO weights from the torch hub cache)")
