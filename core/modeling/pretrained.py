"""Pretrained starting points for image trunks, named the torchvision way.

``--image-weights imagenet`` (or an enum member such as ``IMAGENET1K_V2``) resolves through
torchvision's weights API to a file in the torch hub cache,
``$TORCH_HOME/hub/checkpoints/<last part of the URL>``, which is exactly where
torchvision itself keeps it.  The file is downloaded there only when the machine may go
online; offline (``MIA_OFFLINE=1``, or the Hugging Face offline variables) or when the
download fails, the error is one line naming the file and the folder to put it in, so a
machine without internet can be prepared by copying one file.  ``--image-weights PATH``
reads a local state dict instead.

Towers from timm and open_clip keep their weights on the Hugging Face hub:
:func:`hub_file` finds such a file in the Hugging Face cache the same way (downloading it
there only when the machine may go online) and names the folder to fill when it cannot.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
from pathlib import Path
from urllib.parse import urlparse

import torch
import torchvision

from mia.core.base import atomic
from mia.core.modeling.checkpoint import read_torch_file
from mia.core.base.errors import MiaError

#: any of these set (to anything but 0/empty) means: never try the network
OFFLINE_VARIABLES = ("MIA_OFFLINE", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
ALIASES = ("imagenet", "default")
DOWNLOAD_TIMEOUT_S = 30


def offline() -> bool:
    return any(os.environ.get(name, "") not in ("", "0") for name in OFFLINE_VARIABLES)


def weights_names(model_name: str) -> list[str]:
    """What ``--image-weights`` accepts by name for a torchvision model."""
    return [*ALIASES, *(w.name for w in torchvision.models.get_model_weights(model_name))]


def torchvision_weights(model_name: str, name: str):
    """The weights enum member that ``name`` means for ``model_name`` (``imagenet`` = DEFAULT)."""
    enum = torchvision.models.get_model_weights(model_name)
    if name.lower() in ALIASES:
        return enum.DEFAULT
    member = name.rsplit(".", 1)[-1]
    if member in enum.__members__:
        return enum[member]
    raise MiaError(f"--image-weights {name}: neither an existing file nor a weights name of {model_name} "
                   f"({', '.join(weights_names(model_name))})")


def cache_path(weights) -> Path:
    """Where torchvision keeps (and mia looks for) the file of ``weights``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(weights.url).path)


def _fetch(weights, path: Path, label: str) -> None:
    cached = [w.name for w in type(weights) if w is not weights and cache_path(w).is_file()]
    fetch_url(weights.url, path, label, f"; cached here: {', '.join(cached)}" if cached else "")


def fetch_url(url: str, path: Path, label: str, note: str = "") -> None:
    """Download ``url`` to ``path`` unless offline; either failure is one line naming the
    file, the folder and the URL (``label`` starts with the option, e.g. ``--image-weights
    imagenet``; ``note`` adds what else is cached)."""
    hint = (f"{label}: {path.name} is not in {path.parent}; put it there (it is {url}), "
            f"or pass {label.split()[0]} PATH to a local copy" + note)
    if offline():
        raise MiaError(hint + " [offline]")
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(url, str(path), progress=True)
    except Exception as exc:  # no network, proxy, DNS, HTTP errors: all mean "put the file there yourself"
        raise MiaError(f"{hint} [download failed: {type(exc).__name__}]") from None
    finally:
        socket.setdefaulttimeout(previous)


def hf_hub_cache() -> Path:
    """The Hugging Face hub cache as ``huggingface_hub`` finds it, read now (not when
    ``huggingface_hub`` was imported), so a changed ``HF_HOME`` counts."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "huggingface")
    return Path(home).expanduser() / "hub"


def hub_file(repo_id: str, filenames: tuple[str, ...], label: str) -> Path:
    """The first of ``filenames`` that model repository ``repo_id`` has, from the Hugging
    Face cache (downloaded there when the machine may go online).  Not found: one line
    naming the repository, the file and the cache folder to copy it into."""
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:
        raise MiaError(f"{label}: resolving {repo_id} needs huggingface_hub: pip install huggingface_hub") from None
    cache = hf_hub_cache()
    failure = "offline"
    for filename in filenames:
        try:
            return Path(hf_hub_download(repo_id, filename, cache_dir=cache, local_files_only=offline()))
        except Exception as exc:  # not cached, not in the repository, no network: try the next name
            failure = "offline" if offline() else f"download failed: {type(exc).__name__}"
    folder = cache / f"models--{repo_id.replace('/', '--')}"
    raise MiaError(f"{label}: {repo_id} ({' or '.join(filenames)}) is not in the Hugging Face cache {cache}; "
                   f"fetch it where there is internet (`hf download {repo_id} {filenames[0]}`) and copy its "
                   f"{folder.name} folder into {cache}, or pass {label.split()[0]} PATH to a local copy [{failure}]")


def load_image_weights(model_name: str, spec: str) -> tuple[dict, str]:
    """(state dict, where it came from) for ``--image-weights SPEC``: a file or a weights name.

    The second item is recorded in checkpoints and manifests, e.g.
    ``torchvision:MobileNet_V2_Weights.IMAGENET1K_V1`` or ``file:my-trunk.pth``.
    """
    path = Path(spec).expanduser()
    if path.is_file() or os.sep in spec or spec.endswith((".pt", ".pth")):
        return read_torch_file(path, f"--image-weights {spec}"), f"file:{path.name}"
    weights = torchvision_weights(model_name, spec)
    file = cache_path(weights)
    if not file.is_file():
        _fetch(weights, file, f"--image-weights {spec}")
    state = read_torch_file(file, f"--image-weights {spec} ({file})")
    return state, f"torchvision:{type(weights).__name__}.{weights.name}"


def cached_weights(model_names) -> list[tuple[str, str, Path, bool]]:
    """(model, weights name, cache file, present?) for every torchvision weights of the models
    (names torchvision does not know, such as the ``timm`` and ``clip`` families, have none)."""
    rows = []
    known = set(torchvision.models.list_models())
    for model in (name for name in model_names if name in known):
        for weights in torchvision.models.get_model_weights(model):
            path = cache_path(weights)
            rows.append((model, weights.name, path, path.is_file()))
    return rows


def known_weights_files() -> dict:
    """torchvision's file name of every weights enum member -> the member."""
    return {cache_path(w).name: w for model in torchvision.models.list_models()
            for w in torchvision.models.get_model_weights(model)}


def add_weights_file(source: str | Path) -> Path:
    """Copy a torchvision weights file into the hub cache, where ``--image-weights NAME`` finds it.

    The file must carry torchvision's own name, whose last part is the start of its
    sha256 (``mobilenet_v2-b0353104.pth``): the contents are checked against it, so a
    renamed or damaged file is refused rather than trained from.
    """
    source = Path(source)
    if not source.is_file():
        raise MiaError(f"{source}: file not found")
    weights = known_weights_files().get(source.name)
    if weights is None:
        raise MiaError(f"{source.name}: not the name of a torchvision weights file "
                       "(expected the name torchvision downloads, e.g. mobilenet_v2-b0353104.pth)")
    prefix = source.stem.rsplit("-", 1)[-1]
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    if not digest.startswith(prefix):
        raise MiaError(f"{source}: its sha256 starts {digest[:8]}, not {prefix} as its name says: "
                       "a different or damaged file")
    target = cache_path(weights)
    with atomic.atomic_path(target) as tmp:
        shutil.copyfile(source, tmp)
    return target
