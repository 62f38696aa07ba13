"""Built-in text encoders, registered by reference (imported when a model is built, so
listing them needs neither torch nor transformers)."""

from __future__ import annotations

from mia.core.hookspecs import hookimpl


@hookimpl
def register_text_encoders(register):
    register("bigru", "mia.plugins.bigru:bigru", aliases=("bi-gru", "gru"),
             description="300-d word embeddings + 1-layer bi-GRU, masked max-pool (MIA)")
    register("transformer", "mia.plugins.text_transformer:transformer", aliases=("hf",),
             description="pretrained Hugging Face text tower, fine-tuned (--text-weights NAME_OR_DIR; needs mia-reid[hf])")
