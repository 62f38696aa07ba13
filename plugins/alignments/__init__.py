"""Built-in alignment granularities, registered by reference through ``register_alignments``
(each module is imported when a model is built)."""

from __future__ import annotations

from mia.core.registry.hookspecs import hookimpl


@hookimpl
def register_alignments(register):
    register("global", "mia.plugins.alignments.global_align:GlobalAlignment", aliases=("global-global",),
             description="global-global: cosine of image and sentence vectors")
    register("part", "mia.plugins.alignments.part_align:PartAlignment", aliases=("global-part", "rga"),
             description="global-part: each global vector weighs the other modality's parts (relation-guided)")
    register("fine", "mia.plugins.alignments.fine_align:FineAlignment", aliases=("part-part", "bfm"),
             description="part-part: noun phrases and image stripes attend to each other (bidirectional)")
