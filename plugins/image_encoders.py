"""Built-in image encoders, registered by reference: ``mia list`` and ``mia --help`` read
names and descriptions without importing torch; the implementation module
(:mod:`mia.plugins.torchvision_encoders`) is imported when a model is built."""

from __future__ import annotations

from mia.core.hookspecs import hookimpl

IMPLEMENTATION = "mia.plugins.torchvision_encoders"


@hookimpl
def register_image_encoders(register):
    register("resnet50", f"{IMPLEMENTATION}:resnet50", description="ResNet-50 trunk (paper default), 2048-d map")
    register("resnet18", f"{IMPLEMENTATION}:resnet18", description="ResNet-18 trunk, 512-d map (fast)")
    register("mobilenet_v2", f"{IMPLEMENTATION}:mobilenet_v2", aliases=("mobilenet-v2",),
             description="MobileNetV2 features, 1280-d map (fast, deployable)")
