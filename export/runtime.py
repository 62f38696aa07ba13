"""The deployed retriever: ONNX Runtime + numpy + Pillow, never torch.

``Retriever(model_dir)`` reads the manifest (checking every graph's sha256), preprocesses
images and captions exactly as training did (same resize/normalisation, same tokenizer,
vocabulary and noun-phrase chunker), encodes in batches and ranks.  ``device="auto"``
asks for CUDA first when a GPU is present; ``providers`` says what ONNX Runtime really
gave (it falls back to CPU silently otherwise).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import onnxruntime as ort

from mia.core.settings.config import EVAL_CHUNK
from mia.core.base.errors import MiaError
from mia.core.data.preprocess import load_image_array
from mia.core.data.text_arrays import TextSettings, encode_texts
from mia.core.data.tokenizer import tokenize
from mia.export.manifest import model_digest, read_manifest, read_tokenizer

CUDA, CPU = "CUDAExecutionProvider", "CPUExecutionProvider"


def gpu_present() -> bool:
    """A cheap check for an NVIDIA device, so CPU-only hosts never try (and log) CUDA."""
    return os.path.exists("/dev/nvidiactl") or bool(os.environ.get("MIA_ASSUME_GPU"))


def requested_providers(device: str) -> list[str]:
    if device not in ("auto", "cpu", "cuda"):
        raise MiaError(f"device {device!r}: expected auto, cpu or cuda")
    cuda_built = CUDA in ort.get_available_providers()
    if device == "cuda":
        if not cuda_built or not gpu_present():
            raise MiaError("device 'cuda': CUDA is not available to ONNX Runtime on this machine "
                           f"(providers: {', '.join(ort.get_available_providers())}); use cpu or auto")
        return [CUDA, CPU]
    if device == "auto" and cuda_built and gpu_present():
        return [CUDA, CPU]
    return [CPU]


def make_session(path: Path, device: str = "auto") -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    providers = requested_providers(device)
    if CUDA in providers and hasattr(ort, "preload_dlls"):
        ort.preload_dlls()  # CUDA/cuDNN from the nvidia-* wheels, without importing torch
    session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
    if device == "cuda" and CUDA not in session.get_providers():
        raise MiaError(f"device 'cuda': ONNX Runtime could not start CUDA for {path.name}")
    return session


@dataclass
class EncodedImages:
    """Gallery features: what the scorer reads (``image_parts`` only when it needs them)."""

    arrays: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.arrays["image_global"])

    def subset(self, index) -> "EncodedImages":
        return EncodedImages({k: v[index] for k, v in self.arrays.items()})

    @staticmethod
    def concat(parts: Sequence["EncodedImages"]) -> "EncodedImages":
        keys = parts[0].arrays.keys()
        return EncodedImages({k: np.concatenate([p.arrays[k] for p in parts]) for k in keys})


def _chunker(spec: str | None):
    """The training chunker, found the way training found it: through the plugin registry
    (built-ins and entry points alike), which imports no torch; a third-party chunker
    serves as well as it trained."""
    if spec is None:
        return None
    from mia.core.data.phrases import get_chunker

    return get_chunker(spec)


def _open_graph(model_dir: Path, graph: dict, backend: str, device: str):
    path = model_dir / graph["file"]
    if backend == "onnx":
        return make_session(path, device)
    if device == "cuda":
        raise MiaError("device 'cuda': the TorchScript check runs on the CPU; use device cpu or auto")
    from mia.export.backends import TorchScriptSession  # a TorchScript model needs torch anyway

    return TorchScriptSession(path, [i["name"] for i in graph["inputs"]], [o["name"] for o in graph["outputs"]])


class Retriever:
    """Text-to-image search over an exported model directory."""

    def __init__(self, model_dir: str | Path, device: str = "auto", verify: bool = True):
        self.model_dir = Path(model_dir)
        self.manifest = read_manifest(self.model_dir, verify=verify)
        self.digest = model_digest(self.manifest)
        graphs, backend = self.manifest["graphs"], self.manifest["backend"]
        self.sessions = {name: _open_graph(self.model_dir, graph, backend, device) for name, graph in graphs.items()}
        self.inputs = {name: [i["name"] for i in graph["inputs"]] for name, graph in graphs.items()}
        self.outputs = {name: [o["name"] for o in graph["outputs"]] for name, graph in graphs.items()}
        first = self.sessions["image_encoder"]
        self.providers = first.get_providers() if backend == "onnx" else ["TorchScript (CPU)"]
        image = self.manifest["image"]
        self.image_size = tuple(image["size"])
        self.mean, self.std = tuple(image["mean"]), tuple(image["std"])
        text = self.manifest["text"]
        self.tokenizer = read_tokenizer(self.manifest, self.model_dir)
        self.text_settings = TextSettings(text["max_words"], text["max_phrases"], text["phrase_words"],
                                          text["phrase_encoding"])
        self.chunker = _chunker(text["chunker"])

    @property
    def device(self) -> str:
        return "cuda" if self.providers[0] == CUDA else "cpu"

    def run(self, graph: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one graph; feeds are picked by the graph's input names."""
        outputs = self.sessions[graph].run(None, {name: feeds[name] for name in self.inputs[graph]})
        return dict(zip(self.outputs[graph], outputs))

    # -- images -------------------------------------------------------------------------
    def preprocess_images(self, paths: Sequence[str | Path]) -> np.ndarray:
        return np.stack([load_image_array(p, self.image_size, self.mean, self.std) for p in paths])

    @property
    def gallery_features(self) -> set[str]:
        """The image encoder's outputs that the gallery graph reads (what a gallery keeps; an
        export of format 1 has no gallery graph and its scorer reads them)."""
        return set(self.outputs["image_encoder"]) & set(self.inputs.get("gallery", self.inputs["scorer"]))

    def prepare(self, images: "EncodedImages") -> dict[str, np.ndarray]:
        """What scoring reads of a gallery, computed once for all query chunks."""
        if "gallery" not in self.sessions:
            return images.arrays
        return self.run("gallery", images.arrays)

    def encode_image_arrays(self, images: np.ndarray) -> EncodedImages:
        outputs = self.run("image_encoder", {"images": images.astype(np.float32)})
        return EncodedImages({k: v for k, v in outputs.items() if k in self.gallery_features})

    def encode_images(self, paths: Sequence[str | Path], batch_size: int = 64, progress=None) -> EncodedImages:
        batches = []
        for start in range(0, len(paths), batch_size):
            batches.append(self.encode_image_arrays(self.preprocess_images(paths[start:start + batch_size])))
            if progress:
                progress(min(start + batch_size, len(paths)), len(paths))
        if not batches:
            raise MiaError("no images to encode")
        return EncodedImages.concat(batches)

    # -- texts --------------------------------------------------------------------------
    def text_arrays(self, captions: Sequence[str]) -> dict[str, np.ndarray]:
        """Token (and phrase) ids exactly as training built them."""
        phrase_lists = [self.chunker(c) for c in captions] if self.chunker else None
        tokens, phrases = encode_texts(captions, self.tokenizer, self.text_settings, phrase_lists)
        return {"tokens": tokens, "phrases": phrases}

    def unknown_words(self, text: str) -> tuple[list[str], list[str]]:
        """(words the model knows, words it does not) of ``text``."""
        unknown = set(self.tokenizer.unknown_words(text))
        words = tokenize(text)
        return [w for w in words if w not in unknown], [w for w in words if w in unknown]

    def encode_texts(self, captions: Sequence[str], batch_size: int = 256, progress=None) -> dict[str, np.ndarray]:
        batches = []
        for start in range(0, len(captions), batch_size):
            batches.append(self.run("text_encoder", self.text_arrays(captions[start:start + batch_size])))
            if progress:
                progress(min(start + batch_size, len(captions)), len(captions))
        if not batches:
            raise MiaError("no captions to encode")
        return {name: np.concatenate([b[name] for b in batches]) for name in batches[0]}

    # -- ranking ------------------------------------------------------------------------
    def score(self, texts: dict[str, np.ndarray], images: EncodedImages, chunk: int | None = None,
              progress=None) -> np.ndarray:
        """Fused ``[Q, G]`` similarity, ``chunk`` queries at a time (default: the policy's
        for this device, ``EVAL_CHUNK``), against a gallery prepared once."""
        chunk = chunk or EVAL_CHUNK[self.device]
        prepared = self.prepare(images)
        rows, queries = [], len(texts["text_global"])
        for start in range(0, queries, chunk):
            feeds = {**prepared, **{name: value[start:start + chunk] for name, value in texts.items()}}
            rows.append(self.run("scorer", feeds)["similarity"])
            if progress:
                progress(min(start + chunk, queries), queries)
        return np.concatenate(rows)

    def search(self, query: str, images: EncodedImages, top_k: int = 10) -> list[tuple[int, float]]:
        """Indices into ``images`` and scores of the ``top_k`` best matches, best first."""
        scores = self.score(self.encode_texts([query]), images)[0]
        order = np.argsort(-scores, kind="stable")[:top_k]
        return [(int(i), float(scores[i])) for i in order]

