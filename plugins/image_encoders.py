"""Built-in image encoders, registered by reference: ``mia list`` and ``mia --help`` read
names and descriptions without importing torch; the implementation module
(:mod:`mia.plugins.torchvision_encoders`) is imported when a model is built.

``timm`` and ``clip`` are families: ``timm:NAME`` is any timm model and ``clip:ARCH`` the
image tower of any open_clip ViT (see :func:`mia.core.modeling.model.encoder_factory`), each
behind an optional extra that is imported only when such an encoder is built."""

from __future__ import annotations

from mia.core.registry.hookspecs import hookimpl

IMPLEMENTATION = "mia.plugins.torchvision_encoders"


@hookimpl
def register_image_encoders(register):
    register("resnet50", f"{IMPLEMENTATION}:resnet50", description="ResNet-50 trunk (paper default), 2048-d map")
    register("resnet18", f"{IMPLEMENTATION}:resnet18", description="ResNet-18 trunk, 512-d map (fast)")
    register("mobilenet_v2", f"{IMPLEMENTATION}:mobilenet_v2", aliases=("mobilenet-v2",),
             description="MobileNetV2 features, 1280-d map (fast, deployable)")
    register("timm", "mia.plugins.timm_encoders:timm_encoder",
             description="any timm image model as timm:NAME, e.g. timm:resnet50, timm:convnext_tiny, "
                         "timm:vit_base_patch16_224 (needs mia-reid[timm])")
    register("clip", "mia.plugins.clip_towers:clip_image_encoder",
             description="the image tower of an open_clip ViT as clip:ARCH, e.g. clip:ViT-B-16 "
                         "(--image-weights openai; needs mia-reid[clip])")
