"""``mia index``: build, merge and verify a gallery index for two-stage search."""

from __future__ import annotations

import os

import click

from mia.cli.params import COUNT, NON_NEGATIVE_INT
from mia.core.settings.config import DEVICES
from mia.core.base.errors import MiaError

INDEX_TYPES = ("auto", "flat", "ivf", "hnsw")


def _launcher_rank() -> tuple[int, int]:
    """(RANK, WORLD_SIZE) as torchrun or any launcher sets them; (0, 1) without."""
    try:
        world, rank = int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("RANK", "0"))
    except ValueError:
        raise MiaError("RANK and WORLD_SIZE must be integers (as torchrun sets them)") from None
    if world < 1 or not 0 <= rank < world:
        raise MiaError(f"RANK={rank} and WORLD_SIZE={world}: expected 0 <= RANK < WORLD_SIZE")
    return rank, world


@click.group(name="index")
def index():
    """Build, merge and verify a gallery index for two-stage search."""


@index.command(name="build")
@click.option("--model", "model_dir", required=True, help="exported model directory (mia export onnx)")
@click.option("--gallery", help="folder of person images (searched recursively)")
@click.option("--video", help="a video file, or a folder of videos: people are detected, tracked and indexed "
              "as moments (needs mia-reid[video])")
@click.option("--out", required=True, help="index directory (new, empty, or an index to update)")
@click.option("--index-type", type=click.Choice(INDEX_TYPES), default="auto", show_default=True,
              help="FAISS index: exact (flat) below 100,000 images, inverted lists (ivf) above")
@click.option("--workers", type=NON_NEGATIVE_INT, default=None, help="image-decoding processes (default: cores-1)")
@click.option("--batch-size", type=COUNT, default=64, show_default=True)
@click.option("--device", type=click.Choice(DEVICES), default="auto", show_default=True)
@click.option("--detector", default="motion", show_default=True,
              help="with --video: person detector NAME[:OPTION] (mia list detector)")
@click.option("--fps", type=click.FloatRange(min=0, min_open=True), default=2.0, show_default=True,
              help="with --video: frames sampled per second of video")
@click.option("--crops-per-track", type=COUNT, default=4, show_default=True,
              help="with --video: crops kept of each person's passage, spread over it")
def build(model_dir, gallery, video, out, index_type, workers, batch_size, device, detector, fps, crops_per_track):
    """Encode a gallery (only new or changed files when --out holds an index) into an index.

    With --video, people are found in the footage, linked into tracks across frames, and a
    search returns moments (video, time span, frame and box) instead of images.  Under a
    launcher that sets RANK and WORLD_SIZE each process encodes its share of a --gallery into
    OUT.shard-RANK-of-WORLD; join them with 'mia index merge OUT'.
    """
    from mia.export.runtime import Retriever

    if (gallery is None) == (video is None):
        raise MiaError("give exactly one of --gallery FOLDER and --video FILE_OR_FOLDER")
    rank, world = _launcher_rank()
    workers = max((os.cpu_count() or 1) - 1, 0) if workers is None else workers
    log = lambda m: click.echo(m, err=True)  # noqa: E731
    if video is not None:
        if world > 1:
            raise MiaError("--video is indexed by one process; run it without a launcher (WORLD_SIZE > 1)")
        from mia.export.video_index import build_video_index

        build_video_index(Retriever(model_dir, device=device), video, out, detector, fps, crops_per_track, index_type,
                          workers, batch_size, device, log=log)
        return
    from mia.export.store import build_index

    build_index(Retriever(model_dir, device=device), gallery, out, index_type, workers, batch_size, rank, world,
                log=log)


@index.command(name="merge")
@click.argument("out")
@click.option("--index-type", type=click.Choice(INDEX_TYPES), default="auto", show_default=True)
def merge(out, index_type):
    """Join the shards beside OUT (OUT.shard-*-of-N) into the index OUT."""
    from mia.export.store import merge_shards

    merge_shards(out, index_type, log=lambda m: click.echo(m, err=True))


@index.command(name="verify")
@click.argument("path")
def verify(path):
    """Check every file of an index against its size and sha256."""
    from mia.export.store import open_store

    opened = open_store(path, verify=True)
    first_stage = opened.meta["faiss"]
    stage = f"FAISS {first_stage['kind']}" if first_stage else "no FAISS first stage (a --gallery cache)"
    click.echo(f"{path}: {len(opened)} images, {stage}, every file intact")
