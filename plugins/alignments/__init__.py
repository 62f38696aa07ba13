"""Built-in alignment granularities, registered through ``register_alignments``."""

from __future__ import annotations

from mia.core.hookspecs import hookimpl
from mia.plugins.alignments.global_align import GlobalAlignment


@hookimpl
def register_alignments(register):
    register("global", GlobalAlignment, aliases=("global-global",),
             description="global-global: cosine of image and sentence vectors")
