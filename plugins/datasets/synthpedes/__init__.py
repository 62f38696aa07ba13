"""synthpedes: a procedural text-to-image person retrieval data set in the CUHK-PEDES format.

Pedestrians are drawn with Pillow from fixed identity attributes (gender, hair, upper and
lower garment, shoes, bag, hat) with per-image nuisances (pose, scale, background,
lighting, blur, occlusion, JPEG), and described by CUHK-like captions.  About a third of
the identities are hard negatives of another identity (one attribute changed, or upper
and lower colours swapped), so models that ignore which colour goes with which garment
are visibly worse.  ``generate_synthpedes`` writes ``imgs/``, ``reid_raw.json``,
``identities.json`` (:data:`IDENTITY_FILE`) and ``reid_raw_unseen.json``
(:data:`UNSEEN_ANNOTATION_FILE`: the same entries with test captions in held-out words,
an open-vocabulary test).
"""

from .generate import (
    ANNOTATION_FILE,
    DEFAULT_SET,
    IDENTITY_FILE,
    UNSEEN_ANNOTATION_FILE,
    SynthConfig,
    contact_sheet,
    generate_synthpedes,
)

__all__ = [
    "ANNOTATION_FILE",
    "DEFAULT_SET",
    "IDENTITY_FILE",
    "UNSEEN_ANNOTATION_FILE",
    "SynthConfig",
    "contact_sheet",
    "generate_synthpedes",
]
