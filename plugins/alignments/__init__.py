"""Built-in alignment granularities, registered through ``register_alignments``."""

from __future__ import annotations

from mia.core.hookspecs import hookimpl
from mia.plugins.alignments.fine_align import FineAlignment
from mia.plugins.alignments.global_align import GlobalAlignment
from mia.plugins.alignments.part_align import PartAlignment


@hookimpl
def register_alignments(register):
    register("global", GlobalAlignment, aliases=("global-global",),
             description="global-global: cosine of image and sentence vectors")
    register("part", PartAlignment, aliases=("global-part", "rga"),
             description="global-part: each global vector weighs the other modality's parts (relation-guided)")
    register("fine", FineAlignment, aliases=("part-part", "bfm"),
             description="part-part: noun phrases and image stripes attend to each other (bidirectional)")
