"""Built-in text encoders, registered by reference (imported when a model is built, so
listing them needs neither torch nor transformers).  ``clip`` is a family: ``clip:ARCH``
is the text tower of an open_clip model (see :func:`mia.core.modeling.model.encoder_factory`)."""

from __future__ import annotations

from mia.core.registry.hookspecs import hookimpl


@hookimpl
def register_text_encoders(register):
    register("bigru", "mia.plugins.bigru:bigru", aliases=("bi-gru", "gru"),
             description="300-d word embeddings + 1-layer bi-GRU, masked max-pool (MIA)")
    register("bigru-final", "mia.plugins.bigru:bigru_final",
             description="the same bi-GRU, sentence and phrase vectors from both directions' final hidden states "
                         "(the MIA paper's)")
    register("bigru-wide", "mia.plugins.bigru:bigru_wide",
             description="the bi-GRU at the public MIA re-implementation's width (1024 per direction), max-pooled")
    register("transformer", "mia.plugins.text_transformer:transformer", aliases=("hf",),
             description="pretrained Hugging Face text tower, fine-tuned (--text-weights NAME_OR_DIR; needs mia-reid[hf])")
    register("clip", "mia.plugins.clip_towers:clip_text_encoder",
             description="the text tower of an open_clip model as clip:ARCH, e.g. clip:ViT-B-16 "
                         "(--text-weights openai; needs mia-reid[clip])")
