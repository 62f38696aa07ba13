"""The hooks a mia plugin can implement (simonw/llm style: every hook gets a callback).

Each ``register_*`` hook receives ``register(name, factory, aliases=(), description="")``;
``factory`` may be the callable or a ``"module:attribute"`` string naming it, imported only
when the component is used (so listing components never imports torch).
Built-in components are registered through these very hooks (see ``mia.plugins``), so a
third-party plugin is exactly as capable as the built-ins.
"""

import pluggy

hookspec = pluggy.HookspecMarker("mia")
hookimpl = pluggy.HookimplMarker("mia")


@hookspec
def register_image_encoders(register):
    """Register image encoders.

    ``factory(embed_dim, num_parts, weights=None) -> nn.Module`` whose forward maps images
    ``[B, 3, H, W]`` to ``(global [B, D], parts [B, K, D])``.  ``weights`` is what
    ``--image-weights`` says (a name such as ``imagenet`` or a file).  The module may declare
    ``preprocessing`` (a :class:`mia.core.data.preprocess.ImagePreprocessing`: mean, std, default
    size; ImageNet statistics at 384x128 otherwise) and ``weights_source`` (recorded as
    where training started).  Optional parameters, given only to a factory that names them:
    ``image_size`` (``--image-size`` or None) and ``config`` (what the module's
    ``config_dict`` returned, when a checkpoint rebuilds it).  A module with a
    ``without_head_norms()`` method (drop the normalisation after its output heads) can be
    trained with ``--image-heads linear``.  A *family* (``timm``,
    ``clip``) registers a callable marked ``family = True`` that maps the text after the
    colon of ``FAMILY:MEMBER`` to such a factory (text encoders alike).
    """


@hookspec
def register_text_encoders(register):
    """Register text encoders.

    ``factory(vocab_size, embed_dim, phrase_encoding="sequences", weights=None, config=None)
    -> nn.Module`` whose forward maps ``(tokens [B, L], phrases [B, M, P])`` to
    ``(global [B, D], phrases [B, M, D], phrase_mask [B, M])``; id 0 is padding everywhere.
    ``phrases`` holds each phrase's token ids (``sequences``) or the 1-based positions of
    its tokens in the caption (``spans``).  ``weights`` (``--text-weights``) starts training
    from a pretrained model; ``config`` is what the module's ``config_dict`` returned,
    handed back when a checkpoint rebuilds it.  Optional declarations:
    ``factory.phrase_encodings`` (supported, default first; else only ``sequences``),
    ``factory.build_tokenizer(texts, min_freq, weights)`` (else mia's word vocabulary from
    the training captions), ``module.pretrained_parameters()`` (trained at
    ``--text-lr-mult`` times the rate).
    """


@hookspec
def register_alignments(register):
    """Register alignment granularities.

    ``factory(embed_dim) -> mia.core.modeling.alignment.Alignment`` (an ``nn.Module`` that scores
    every text against every image and names its identity-loss features).  Evaluation
    scores many query chunks against one gallery: an alignment whose gallery side costs
    work may also override ``prepare_gallery`` / ``score_prepared`` to do it once
    (``mia.core.modeling.alignment.PreparedAlignment`` then derives ``similarity`` from them).
    A factory that also names ``rga_temperature`` or ``rga_mlp`` gets the model's setting
    of it (``"learned"`` or ``"fixed"``; ``"guide"`` or ``"parts"``); one that does not is
    built without it.
    """


@hookspec
def register_datasets(register):
    """Register data sets.

    ``factory(path) -> list[mia.core.data.records.Record]``.  ``path`` may be ``None`` for a
    data set that can build itself (the built-in ``synthpedes``).  A factory may carry
    ``detect(path) -> bool`` so that ``--data PATH`` finds it from the annotation file.
    """


@hookspec
def register_phrase_chunkers(register):
    """Register noun-phrase chunkers.

    ``factory(option) -> callable(caption: str) -> list[str]``; ``option`` is the text
    after the colon in ``--chunker NAME:OPTION`` (or ``None``).
    """


@hookspec
def register_recipes(register):
    """Register training recipes (``mia recipes``, ``mia train --recipe NAME``).

    ``factory() -> str`` returns the recipe's text: a config file in the format of
    :mod:`mia.core.settings.run_config` (TOML, ``format = "mia-config/1"``, a ``description`` line, an
    optional ``default_for`` data set and a ``[train]`` table whose values say in comments
    where they come from).  A plugin that adds a tower or a data set can ship the recipe
    that trains it.
    """


@hookspec
def register_person_detectors(register):
    """Register person detectors (``mia index build --video --detector NAME[:OPTION]``).

    ``factory(option, device="cpu") -> detector``; ``option`` is the text after the colon
    (or ``None``).  The detector has ``detect(frame) -> [N, 5] float32`` (x1, y1, x2, y2 in
    pixels of the ``[H, W, 3]`` uint8 RGB ``frame``, and a confidence), and ``settings``, a
    JSON-able dict of what changes its answers: a video indexed with other settings is
    indexed again.  A detector that learns from the frames it sees (a background model)
    also has ``new_video()``, called before each video's first frame.
    """


@hookspec
def register_commands(cli):
    """Add click commands or groups to the ``mia`` command line."""
