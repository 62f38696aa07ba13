"""Hostile input, no loss: every command against malformed data sets, options, checkpoints,
exports and galleries.

Each case builds its bad input at run time and runs one CLI command in-process.  It must
end with the expected exit code and one line that names the problem (no traceback, no
"internal error" from the safety net), and every file that existed before the command —
the trained run, the export, the data set, the gallery and the case's own inputs — must
be byte for byte the same afterwards.  One tiny model is trained and exported once for
the whole module.  Kill and resume are at the end: they need real processes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest
import torch
from conftest import write_image, write_pedes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_cli_train import TINY, run

from mia.core.base.errors import MiaError
from mia.plugins.datasets.pedes_json import CUHK_PEDES


# --------------------------------------------------------------------------- fixtures


@dataclass
class World:
    """What exists before a case runs: a trained run, its export, a data set and a gallery."""

    data: Path
    run: Path
    export: Path
    gallery: Path
    tmp: Path = field(default=None)

    @property
    def checkpoint(self) -> Path:
        return self.run / "best.pt"


@pytest.fixture(scope="module")
def world(tiny_synth, tiny_model, tmp_path_factory):
    """The shared files, hashed once more after every case of the module has run."""
    made = make_world(tiny_synth, tiny_model, tmp_path_factory)
    roots = (made.data, made.run, made.export, made.gallery)
    before = snapshot(*roots)
    yield made
    assert snapshot(*roots) == before


def make_world(tiny_synth, tiny_model, tmp_path_factory) -> World:
    """A copy of the shared tiny model (this module must see only its own writes)."""
    root = tmp_path_factory.mktemp("hostile")
    shutil.copytree(tiny_model[0], root / "run")
    shutil.copytree(tiny_model[1], root / "export", ignore=shutil.ignore_patterns("gallery-cache"))
    gallery = root / "gallery"
    gallery.mkdir()
    for name in ("train/1_0.jpg", "train/4_0.jpg", "train/5_0.jpg"):
        shutil.copy(tiny_synth / "imgs" / name, gallery / name.replace("/", "-"))
    return World(tiny_synth, root / "run", root / "export", gallery)


def snapshot(*roots: Path, content: bool = True) -> dict[str, object]:
    """sha256 of every file under ``roots``; with ``content=False`` only (inode, size,
    mtime in ns), which any write or replacement changes, for the large shared files."""
    state = {}
    for root in roots:
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            stat = path.stat()
            state[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest() if content else \
                (stat.st_ino, stat.st_size, stat.st_mtime_ns)
    return state


def assert_one_line_failure(result, exit_code: int, fragments: tuple[str, ...]) -> str:
    lines = [line for line in result.output.strip().splitlines() if line.strip()]
    assert result.exit_code == exit_code, result.output
    assert "Traceback" not in result.output and "internal error" not in result.output, result.output
    errors = [line for line in lines if line.startswith("Error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], result.output
    for fragment in fragments:
        assert fragment in errors[0], (fragment, errors[0])
    return errors[0]


# --------------------------------------------------------------------------- helpers that build bad inputs


def entry(**overrides) -> dict:
    base = {"split": "train", "captions": ["a man in a red coat"], "file_path": "a.jpg", "processed_tokens": [], "id": 1}
    return {**base, **overrides}


def annotation(w: World, content) -> str:
    """A CUHK-PEDES folder holding ``content`` (entries, or raw text/bytes) and one image."""
    folder = w.tmp / "pedes"
    write_image(folder / "imgs" / "a.jpg")
    path = folder / CUHK_PEDES.annotation_file
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, str):
        path.write_text(content)
    else:
        path.write_text(json.dumps(content))
    return f"cuhk-pedes:{folder}"


def checkpoint_with(w: World, change: Callable[[dict], None], name: str = "bad.pt") -> Path:
    payload = torch.load(w.checkpoint, weights_only=True)
    change(payload)
    path = w.tmp / name
    torch.save(payload, path)
    return path


def export_with(w: World, change: Callable[[dict], None]) -> Path:
    """A copy of the export whose manifest ``change`` edits."""
    folder = w.tmp / "model"
    shutil.copytree(w.export, folder, ignore=shutil.ignore_patterns("gallery-cache"))
    manifest = json.loads((folder / "manifest.json").read_text())
    change(manifest)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def user_dir(w: World, *names: str) -> Path:
    folder = w.tmp / "mine"
    folder.mkdir()
    for name in names:
        (folder / name).write_text(f"the user's {name}")
    return folder


def train_args(w: World, *extra) -> list:
    return ["train", "--data", w.data, "--out", w.tmp / "new-run", *TINY, *extra]


def search_args(w: World, query="a man in a red coat", *extra) -> list:
    return ["search", query, "--model", w.export, "--gallery", w.gallery, "--device", "cpu",
            "--cache-dir", w.tmp / "cache", *extra]


def set_key(d: dict, dotted: str, value) -> None:
    *parents, last = dotted.split(".")
    for key in parents:
        d = d[key]
    if value is KeyError:
        del d[last]
    else:
        d[last] = value


# --------------------------------------------------------------------------- the cases


@dataclass(frozen=True)
class Case:
    id: str
    args: Callable[[World], list]
    fragments: tuple[str, ...]
    exit_code: int = 1


def data_case(id, content, *fragments):
    return Case(f"data-{id}", lambda w: ["data", "info", annotation(w, content)], fragments)


def option_case(id, build, *fragments):
    return Case(f"option-{id}", build, fragments, exit_code=2)


def checkpoint_case(id, change, *fragments):
    return Case(f"checkpoint-{id}", lambda w: ["eval", "--checkpoint", checkpoint_with(w, change), "--workers", 0,
                                               "--device", "cpu"], fragments)


def export_case(id, change, *fragments):
    return Case(f"export-{id}", lambda w: ["search", "a man", "--model", export_with(w, change), "--gallery", w.gallery,
                                           "--device", "cpu"], fragments)


def without_optimizer(payload: dict) -> None:
    del payload["optimizer"]


def with_uninstalled_alignment(payload: dict) -> None:
    payload["spec"]["alignments"] = ["global", "sdm"]
    payload["active"] = ["global"]


def with_twins(w: World, twins: list) -> str:
    """A two-person CUHK-PEDES folder with a twins.json."""
    spec = pedes_folder(w, ["train", "test"])
    (w.tmp / "pedes" / "twins.json").write_text(json.dumps(twins))
    return spec


def pedes_folder(w: World, splits: list[str]) -> str:
    """A CUHK-PEDES folder with one image and two captions per entry of ``splits``."""
    entries = [entry(split=split, file_path=f"{i}.jpg", id=i + 1, captions=["a man in a red coat", "a red coat"])
               for i, split in enumerate(splits)]
    return f"cuhk-pedes:{write_pedes(w.tmp / 'pedes', CUHK_PEDES.annotation_file, entries)}"


CASES = [
    # -- annotation files ---------------------------------------------------------------------
    data_case("not-json", "{not json", "not valid JSON (line 1, column 2"),
    data_case("not-a-list", '{"a": 1}', "expected a JSON list of entries, got dict"),
    data_case("entry-not-object", "[3]", "entry 0: expected an object, got int"),
    data_case("missing-id", [{k: v for k, v in entry().items() if k != "id"}], "entry 0: missing field 'id'"),
    data_case("id-double-minus", [entry(id="--5")], "field 'id' must be an integer from 0", "'--5'"),
    data_case("id-negative", [entry(id=-3)], "field 'id' must be an integer from 0", "-3"),
    data_case("id-huge", [entry(id=10**30)], "field 'id' must be an integer from 0 to 9223372036854775807"),
    data_case("id-huge-string", [entry(id="9" * 25)], "field 'id' must be an integer from 0"),
    data_case("id-float", [entry(id=1.5)], "field 'id' must be an integer", "1.5"),
    data_case("id-bool", [entry(id=True)], "field 'id' must be an integer", "True"),
    data_case("id-word", [entry(id="seven")], "field 'id' must be an integer", "'seven'"),
    data_case("split-unknown", [entry(split="dev")], "field 'split' must be one of train, val, test, got 'dev'"),
    data_case("captions-string", [entry(captions="a man")], "field 'captions' must be a list of strings"),
    data_case("captions-number", [entry(captions=["a man", 7])], "field 'captions' must be a list of strings"),
    data_case("path-parent", [entry(file_path="../../etc/passwd")], "field 'file_path' must be a path inside imgs/",
              "'../../etc/passwd'"),
    data_case("path-absolute", [entry(file_path="/etc/passwd")], "field 'file_path' must be a path inside imgs/"),
    data_case("path-inner-parent", [entry(file_path="cam_a/../../x.jpg")], "must be a path inside imgs/"),
    data_case("path-nul", [entry(file_path="a\u0000.jpg")], "field 'file_path' must be a file name without NUL"),
    data_case("path-empty", [entry(file_path="  ")], "field 'file_path' must be a non-empty string"),
    data_case("path-surrogate", [entry(file_path="a\ud800.jpg")], "without NUL bytes or invalid Unicode"),
    data_case("not-utf8", b"[\xff\xfe]", "cannot read annotation file"),
    data_case("huge-number", "[" + "9" * 5000 + "]", "not a usable JSON file"),
    data_case("deep-nesting", "[" * 100_000 + "]" * 100_000, "not a usable JSON file"),
    data_case("empty-list", [], "has no usable records"),
    data_case("only-missing-images", [entry(file_path="nowhere.jpg")], "has no usable records",
              "skipped 1 missing image file(s)"),
    data_case("only-empty-captions", [entry(captions=["  ", ""])], "has no usable records",
              "skipped 1 image(s) without captions"),
    Case("data-twins-unknown-person", lambda w: ["data", "info", with_twins(w, [{"a": 1, "b": 999}])],
         ("twin pair (1, 999) names person 999, who has no usable image in the data set",)),
    Case("data-twins-malformed", lambda w: ["data", "info", with_twins(w, [{"a": 1}])],
         ("twins.json: entry 0: expected an object with fields 'a' and 'b'",)),
    Case("data-twins-bad-id", lambda w: ["data", "info", with_twins(w, [{"a": 1, "b": "-2"}])],
         ("twins.json: entry 0: field 'b' must be an integer from 0",)),
    Case("data-synth-splits-too-large", lambda w: ["data", "synth", "--out", w.tmp / "s", "--ids", 10, "--val-ids", 5,
                                                   "--test-ids", 5],
         ("--val-ids 5 and --test-ids 5 leave no training identity out of --ids 10",)),
    Case("data-unknown-path", lambda w: ["data", "info", w.tmp / "nowhere"], ("neither a data set name",)),
    Case("data-name-needs-path", lambda w: ["data", "info", "cuhk-pedes"], ("--data cuhk-pedes needs a path",)),
    Case("data-unrecognised-folder", lambda w: ["data", "info", user_dir(w, "notes.txt")], ("no data set recognises",)),
    Case("data-train-only-selecting-on-test", lambda w: ["train", "--data", pedes_folder(w, ["train"] * 10),
                                                         "--recipe", "none", "--select-on-test", "--out", w.tmp / "r",
                                                         *TINY], ("has no 'test' split",)),
    Case("data-too-few-people-to-carve-val", lambda w: ["train", "--data", pedes_folder(w, ["train", "test"]),
                                                        "--recipe", "none", "--out", w.tmp / "r", *TINY],
         ("has no val split and too few training people (1) to carve one at --val-share 0.1",)),
    Case("data-too-few-captions-for-batch", lambda w: ["train", "--data", pedes_folder(w, ["train"] * 6 + ["test"]),
                                                       "--recipe", "none", "--out", w.tmp / "r", *TINY],
         ("--batch-size 16: the training split has only 10 captions",)),
    # -- options --------------------------------------------------------------------------------
    option_case("workers-negative", lambda w: train_args(w, "--workers", "-1"), "'--workers'", "an integer >= 0"),
    option_case("lr-inf", lambda w: train_args(w, "--lr", "inf"), "'--lr'", "a finite number > 0", "'inf'"),
    option_case("lr-nan", lambda w: train_args(w, "--lr", "nan"), "'--lr'", "'nan'"),
    option_case("lr-zero", lambda w: train_args(w, "--lr", "0"), "'--lr'", "> 0"),
    option_case("lr-word", lambda w: train_args(w, "--lr", "fast"), "'--lr'", "'fast'"),
    option_case("epochs-zero", lambda w: train_args(w, "--epochs", "0"), "'--epochs'", ">= 1"),
    option_case("batch-one", lambda w: train_args(w, "--batch-size", "1"), "'--batch-size'", ">= 2"),
    option_case("weights-nan", lambda w: train_args(w, "--weights", "global=nan"), "'--weights'", "finite number >= 0"),
    option_case("weights-inf", lambda w: train_args(w, "--weights", "global=inf"), "'--weights'", "global=inf"),
    option_case("weights-negative", lambda w: train_args(w, "--weights", "global=-1"), "'--weights'"),
    option_case("weights-no-equals", lambda w: train_args(w, "--weights", "global"), "'--weights'", "NAME=NUMBER"),
    option_case("loss-weights-word", lambda w: train_args(w, "--loss-weights", "fine=abc"), "'--loss-weights'"),
    option_case("image-size-zero", lambda w: train_args(w, "--image-size", "0x0"), "'--image-size'", "at least 32x32"),
    option_case("image-size-half", lambda w: train_args(w, "--image-size", "64x"), "'--image-size'", "HEIGHTxWIDTH"),
    option_case("margin-negative", lambda w: train_args(w, "--margin", "-0.5"), "'--margin'", ">= 0"),
    option_case("seed-negative", lambda w: train_args(w, "--seed", "-1"), "'--seed'"),
    option_case("eval-chunk-zero", lambda w: train_args(w, "--eval-chunk", "0"), "'--eval-chunk'"),
    option_case("warmup-inf", lambda w: train_args(w, "--warmup-epochs", "inf"), "'--warmup-epochs'"),
    option_case("id-weight-nan", lambda w: train_args(w, "--id-weight", "nan"), "'--id-weight'"),
    option_case("max-words-zero", lambda w: train_args(w, "--max-words", "0"), "'--max-words'"),
    option_case("align-empty", lambda w: train_args(w, "--align", ","), "'--align'", "comma-separated list"),
    option_case("compile-unknown", lambda w: train_args(w, "--compile", "fastest"), "'--compile'"),
    option_case("device-unknown", lambda w: train_args(w, "--device", "tpu"), "'--device'"),
    option_case("seeds-repeated", lambda w: ["ablate", "--align", "global", "--seeds", "0,0", "--out", w.tmp / "a"],
                "'--seeds'", "distinct non-negative"),
    option_case("seeds-word", lambda w: ["ablate", "--align", "global", "--seeds", "one", "--out", w.tmp / "a"],
                "'--seeds'"),
    option_case("eval-weights-nan", lambda w: ["eval", "--checkpoint", w.checkpoint, "--weights", "fine=nan"],
                "'--weights'"),
    option_case("eval-chunk-negative", lambda w: ["eval", "--checkpoint", w.checkpoint, "--eval-chunk", "-1"],
                "'--eval-chunk'"),
    option_case("top-k-zero", lambda w: search_args(w, "a man", "--top-k", "0"), "'--top-k'", ">= 1"),
    option_case("top-k-negative", lambda w: search_args(w, "a man", "--top-k", "-5"), "'--top-k'"),
    option_case("opset-ancient", lambda w: ["export", "onnx", "--checkpoint", w.checkpoint, "--out", w.tmp / "e",
                                            "--opset", "3"], "'--opset'", ">= 13"),
    option_case("synth-ids", lambda w: ["data", "synth", "--out", w.tmp / "s", "--ids", "2"], "'--ids'", ">= 3"),
    option_case("synth-height", lambda w: ["data", "synth", "--out", w.tmp / "s", "--height", "5"], "'--height'"),
    option_case("missing-out", lambda w: ["export", "onnx", "--checkpoint", w.checkpoint], "Missing option '--out'"),
    option_case("unknown-command", lambda w: ["trian"], "No such command 'trian'"),
    Case("option-unknown-alignment", lambda w: train_args(w, "--align", "global,nope"), ("unknown alignment 'nope'",)),
    Case("option-stages-malformed", lambda w: train_args(w, "--stages", "global:x"), ("--stages", "NAME:EPOCHS")),
    Case("option-weights-untrained", lambda w: ["eval", "--checkpoint", w.checkpoint, "--weights", "part=1"],
         ("--weights names 'part', which is not trained",)),
    # -- outputs: nothing the user made is replaced -------------------------------------------
    Case("out-export-force-into-run", lambda w: ["export", "onnx", "--checkpoint", w.checkpoint, "--out", w.run,
                                                 "--force"], ("--out", "contains", "best.pt", "which this command reads")),
    Case("out-export-force-into-user-dir", lambda w: ["export", "onnx", "--checkpoint", w.checkpoint, "--out",
                                                      user_dir(w, "thesis.tex", "notes.txt"), "--force"],
         ("--force replaces only a previous mia export", "notes.txt, thesis.tex")),
    Case("out-export-force-into-data", lambda w: ["export", "onnx", "--checkpoint", w.checkpoint, "--out", w.data,
                                                  "--force"], ("--force replaces only a previous mia export",)),
    Case("out-export-without-force", lambda w: ["export", "onnx", "--checkpoint", w.checkpoint, "--out", w.export],
         ("exists and is not empty; pass --force",)),
    Case("out-export-is-a-file", lambda w: ["export", "onnx", "--checkpoint", w.checkpoint, "--out",
                                            user_dir(w, "f.txt") / "f.txt"], ("is a file, expected a directory",)),
    Case("out-train-into-user-dir", lambda w: ["train", "--data", w.data, "--out", user_dir(w, "paper.pdf"), *TINY],
         ("holds files that are not a mia run (paper.pdf)",)),
    Case("out-train-into-data", lambda w: ["train", "--data", w.data, "--out", w.data, *TINY],
         ("holds files that are not a mia run",)),
    Case("out-train-existing-run", lambda w: ["train", "--data", w.data, "--out", w.run, *TINY],
         ("already holds a run", "--resume")),
    Case("out-ablate-into-user-dir", lambda w: ["ablate", "--data", w.data, "--align", "global", "--out",
                                                user_dir(w, "results.csv"), *TINY],
         ("holds files that are not a mia ablation (results.csv)",)),
    Case("out-ablate-damaged-state", lambda w: ["ablate", "--data", w.data, "--align", "global", "--out",
                                                user_dir(w, "ablation.json"), *TINY],
         ("ablation.json: not a readable ablation state",)),
    Case("out-synth-into-user-dir", lambda w: ["data", "synth", "--out", user_dir(w, "a.txt"), "--ids", 3],
         ("--out", "exists and is not empty",)),
    Case("out-eval-html-directory", lambda w: ["eval", "--checkpoint", w.checkpoint, "--html", user_dir(w)],
         ("--html", "is a directory, expected the path of an .html file",)),
    Case("out-eval-html-over-checkpoint", lambda w: ["eval", "--checkpoint", w.checkpoint, "--html", w.checkpoint],
         ("--html", "best.pt exists and is not a page mia wrote",)),
    Case("out-search-html-over-image", lambda w: search_args(w, "a man", "--html", w.gallery / "train-1_0.jpg"),
         ("--html", "train-1_0.jpg exists and is not a page mia wrote",)),
    Case("out-train-is-a-file", lambda w: ["train", "--data", w.data, "--out", user_dir(w, "f") / "f", *TINY],
         ("--out", "is a file, expected a directory")),
    Case("out-synth-is-a-file", lambda w: ["data", "synth", "--out", user_dir(w, "f") / "f", "--ids", 3],
         ("--out", "is a file, expected a directory")),
    Case("out-eval-html-under-a-file", lambda w: ["eval", "--checkpoint", w.checkpoint, "--html",
                                                  user_dir(w, "f") / "f" / "page.html"], ("--html", "is a file, not a directory")),
    Case("out-search-html-directory", lambda w: search_args(w, "a man", "--html", w.gallery),
         ("--html", "is a directory",)),
    # -- checkpoints ---------------------------------------------------------------------------
    Case("checkpoint-directory", lambda w: ["eval", "--checkpoint", w.run], ("is a directory, expected a file",)),
    Case("checkpoint-missing", lambda w: ["eval", "--checkpoint", w.tmp / "nope.pt"], ("nope.pt: file not found",)),
    Case("checkpoint-junk", lambda w: ["eval", "--checkpoint", user_dir(w, "x.pt") / "x.pt"],
         ("x.pt: not a PyTorch weights file",)),
    Case("checkpoint-truncated", lambda w: ["eval", "--checkpoint", truncated(w, w.checkpoint)],
         ("not a PyTorch weights file",)),
    Case("checkpoint-a-list", lambda w: ["eval", "--checkpoint", saved(w, [1, 2, 3])], ("not a mia checkpoint",)),
    checkpoint_case("missing-config", lambda p: p.pop("config"), "field 'config' (the training options) is missing"),
    checkpoint_case("missing-spec", lambda p: p.pop("spec"), "field 'spec' (the model description) is missing"),
    checkpoint_case("missing-model", lambda p: p.pop("model"), "field 'model' (the weights) is missing"),
    checkpoint_case("model-not-dict", lambda p: p.update(model=[1]), "field 'model' must be a dict, got list"),
    checkpoint_case("spec-wrong-type", lambda p: p["spec"].update(embed_dim="big"),
                    "'spec' field 'embed_dim' must be int, got 'big'"),
    checkpoint_case("config-wrong-type", lambda p: p["config"].update(lr="fast"), "'config' field 'lr' must be float"),
    checkpoint_case("weight-wrong-shape", lambda p: p["model"].update(
        {"text_encoder.phrase_head.weight": torch.zeros(3, 3)}),
        "weight 'text_encoder.phrase_head.weight' has shape (3, 3), the model built from its spec needs"),
    checkpoint_case("weight-missing", lambda p: p["model"].pop("text_encoder.phrase_head.weight"),
                    "its weights do not fit", "missing text_encoder.phrase_head.weight"),
    checkpoint_case("weight-not-tensor", lambda p: p["model"].update({"x": 3}), "must map weight names to tensors"),
    checkpoint_case("encoder-not-installed", lambda p: p["spec"].update(image_encoder="vit_h14"),
                    "unknown image-encoder 'vit_h14'", "available:"),
    checkpoint_case("alignment-not-installed", with_uninstalled_alignment, "unknown alignment 'sdm'"),
    checkpoint_case("vocab-repeats", lambda p: p["tokenizer"].update(vocabulary=["<pad>", "<unk>", "red", "red"]),
                    "field 'tokenizer' is not a mia tokenizer (a vocabulary must not repeat words)"),
    checkpoint_case("tokenizer-unknown-kind", lambda p: p["tokenizer"].update(kind="sentencepiece"),
                    "field 'tokenizer' is not a mia tokenizer (unknown tokenizer kind 'sentencepiece'"),
    checkpoint_case("tokenizer-missing", lambda p: p.pop("tokenizer"), "field 'tokenizer' (how captions become ids) is missing"),
    checkpoint_case("text-encoder-not-installed", lambda p: p["spec"].update(text_encoder="clip-text"),
                    "unknown text-encoder 'clip-text'"),
    checkpoint_case("active-unknown", lambda p: p.update(active=["part"]), "field 'active' must list some"),
    Case("checkpoint-resume-without-optimizer", lambda w: ["train", "--out", run_copy(w, without_optimizer),
                                                           "--resume", "--workers", 0],
         ("field 'optimizer' (the optimizer state) is missing",)),
    Case("checkpoint-resume-truncated", lambda w: ["train", "--out", run_copy(w, truncate_last=True), "--resume"],
         ("last.pt: not a PyTorch weights file",)),
    Case("checkpoint-export-junk", lambda w: ["export", "onnx", "--checkpoint", user_dir(w, "x.pt") / "x.pt",
                                              "--out", w.tmp / "e"], ("not a PyTorch weights file",)),
    # -- exports ---------------------------------------------------------------------------------
    export_case("missing-mean", lambda m: set_key(m, "image.mean", KeyError), "key 'image.mean' is missing"),
    export_case("missing-graphs", lambda m: set_key(m, "graphs", KeyError), "key 'graphs.image_encoder.file' is missing"),
    export_case("std-zero", lambda m: set_key(m, "image.std", [0, 1, 1]), "'image.std' must be 3 positive numbers"),
    export_case("size-string", lambda m: set_key(m, "image.size", "384x128"), "'image.size' must be [height, width]"),
    export_case("file-outside", lambda m: m["files"].update({"../../outside.onnx": "0" * 64}),
                "listed file '../../outside.onnx' is outside the model directory"),
    export_case("file-absolute", lambda m: m["files"].update({"/etc/passwd": "0" * 64}),
                "listed file '/etc/passwd' is outside the model directory"),
    export_case("graph-unlisted", lambda m: set_key(m, "graphs.scorer.file", "other.onnx"),
                "graph 'scorer' reads 'other.onnx', which is not listed with a sha256"),
    export_case("sha-malformed", lambda m: m["files"].update({"scorer.onnx": "abc"}), "key 'files' must be"),
    export_case("vocabulary-repeats", lambda m: set_key(m, "text.vocabulary", ["<pad>", "<unk>", "a", "a"]),
                "'text.vocabulary' must be a list of distinct words"),
    export_case("wrong-format", lambda m: set_key(m, "format", "mia-export/99"), "not a mia export manifest"),
    Case("export-manifest-not-json", lambda w: ["search", "a man", "--model", broken_manifest(w), "--gallery", w.gallery],
         ("manifest.json: not valid JSON",)),
    Case("export-graph-missing", lambda w: ["search", "a man", "--model", export_without(w, "scorer.onnx"),
                                            "--gallery", w.gallery], ("scorer.onnx: missing (listed in manifest.json)",)),
    Case("export-graph-tampered", lambda w: ["search", "a man", "--model", export_tampered(w), "--gallery", w.gallery],
         ("image_encoder.onnx: sha256 mismatch",)),
    Case("export-not-an-export", lambda w: ["eval", "--backend", "onnx", "--model", w.run, "--data", w.data],
         ("not an exported mia model",)),
    # -- search ----------------------------------------------------------------------------------
    Case("search-empty-query", lambda w: search_args(w, "   "), ("DESCRIPTION is empty",)),
    Case("search-surrogate-query", lambda w: search_args(w, "a man in a \udcff coat"),
         ("DESCRIPTION is not valid UTF-8 text (character 12",)),
    Case("search-gallery-missing", lambda w: ["search", "a man", "--model", w.export, "--gallery", w.tmp / "none"],
         ("--gallery", "no such directory",)),
    Case("search-gallery-empty", lambda w: ["search", "a man", "--model", w.export, "--gallery", user_dir(w)],
         ("no .jpg/.jpeg/.png/.webp images found",)),
    Case("search-gallery-only-broken", lambda w: ["search", "a man", "--model", w.export, "--gallery",
                                                  user_dir(w, "x.jpg")], ("none of the 1 images could be read",)),
]


def truncated(w: World, path: Path) -> Path:
    copy = w.tmp / f"truncated-{path.name}"
    copy.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return copy


def saved(w: World, payload) -> Path:
    path = w.tmp / "other.pt"
    torch.save(payload, path)
    return path


def run_copy(w: World, change=None, truncate_last: bool = False) -> Path:
    folder = w.tmp / "run-copy"
    shutil.copytree(w.run, folder)
    if change is not None:
        payload = torch.load(folder / "last.pt", weights_only=True)
        change(payload)
        torch.save(payload, folder / "last.pt")
    if truncate_last:
        data = (folder / "last.pt").read_bytes()
        (folder / "last.pt").write_bytes(data[: len(data) // 3])
    return folder


def broken_manifest(w: World) -> Path:
    folder = export_with(w, lambda m: None)
    (folder / "manifest.json").write_text('{"format": "mia-export/1", ')
    return folder


def export_without(w: World, name: str) -> Path:
    folder = export_with(w, lambda m: None)
    (folder / name).unlink()
    return folder


def export_tampered(w: World) -> Path:
    folder = export_with(w, lambda m: None)
    data = bytearray((folder / "image_encoder.onnx").read_bytes())
    data[-10] ^= 0xFF
    (folder / "image_encoder.onnx").write_bytes(bytes(data))
    return folder


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_input_is_one_clear_line_and_loses_nothing(case: Case, world: World, tmp_path):
    w = World(world.data, world.run, world.export, world.gallery, tmp_path)
    args = case.args(w)
    shared, own = (world.data, world.run, world.export, world.gallery), snapshot(tmp_path)
    before = snapshot(*shared, content=False)
    result = run(*args)
    assert_one_line_failure(result, case.exit_code, case.fragments)
    assert snapshot(tmp_path) == own and snapshot(*shared, content=False) == before


def test_there_are_at_least_sixty_cases():
    assert len(CASES) >= 60
    assert len({c.id for c in CASES}) == len(CASES)


# --------------------------------------------------------------------------- reported, not fatal


def test_repeated_entries_and_invalid_captions_are_reported_and_counted_once(tmp_path):
    entries = [entry(id=1, captions=["a man in a red coat", "bad \ud800 caption"]), entry(id=1),
               entry(id=2, file_path="b.jpg", split="test")]
    folder = write_pedes(tmp_path / "pedes", CUHK_PEDES.annotation_file, entries)
    result = run("data", "info", f"cuhk-pedes:{folder}")
    assert result.exit_code == 0, result.output
    assert "note: skipped 1 repeated entry for images listed earlier (a.jpg)" in result.output
    assert "note: skipped 1 caption(s) with invalid Unicode (a.jpg)" in result.output
    assert "train: 1 identities, 1 images, 1 captions" in result.output


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.dictionaries(st.sampled_from(["split", "captions", "file_path", "id", "extra"]),
                                st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                                             lambda inner: st.lists(inner, max_size=3), max_leaves=5)),
                max_size=4))
def test_any_annotation_file_parses_or_is_one_line_error(tmp_path, entries):
    """Property: whatever the JSON holds, the reader returns records or raises MiaError
    with one line naming the file; never another exception."""
    path = tmp_path / CUHK_PEDES.annotation_file
    path.write_text(json.dumps(entries))
    try:
        records = CUHK_PEDES.read(path)
    except MiaError as exc:
        assert "\n" not in str(exc) and str(path) in str(exc)
    else:
        for record in records:
            assert record.image.is_relative_to(tmp_path / "imgs") and record.person_id >= 0


def test_search_warns_when_the_model_knows_none_of_the_words(world, tmp_path):
    for query, expected in (("!!! ???", "(only punctuation)"), ("zzyzx qwfp", "(zzyzx, qwfp)")):
        result = run("search", query, "--model", world.export, "--gallery", world.gallery, "--device", "cpu",
                     "--cache-dir", tmp_path / "cache", "--json")
        assert result.exit_code == 0, result.output
        assert f"warning: the model knows none of the words in DESCRIPTION {expected}: the ranking is meaningless" \
            in result.stderr
        assert json.loads(result.stdout)["warnings"][0].startswith("the model knows none of the words")
    partly = run("search", "a man in a zzyzx coat", "--model", world.export, "--gallery", world.gallery,
                 "--device", "cpu", "--cache-dir", tmp_path / "cache")
    assert "warning: words the model does not know were ignored: zzyzx" in partly.stderr


def test_a_gallery_cache_that_disagrees_with_its_files_is_rebuilt(world, tmp_path):
    cache = tmp_path / "cache"
    args = ["search", "a man", "--model", world.export, "--gallery", world.gallery, "--device", "cpu",
            "--cache-dir", cache, "--json"]
    first = run(*args)
    [store] = cache.glob("gallery-*")
    entries = json.loads((store / "paths.json").read_text())
    (store / "paths.json").write_text(json.dumps(entries[:2]))  # three feature rows, two file names
    second = run(*args)
    assert second.exit_code == 0 and "gallery: ignoring the damaged store" in second.stderr
    assert "encoding again" in second.stderr and "gallery: 3 images (0 from cache, 3 encoded)" in second.stderr
    assert json.loads(second.stdout)["results"] == json.loads(first.stdout)["results"]
    (store / "index.json").write_bytes(b"garbage")
    third = run(*args)
    assert third.exit_code == 0 and "is not valid JSON" in third.stderr and "encoding again" in third.stderr
    assert json.loads(third.stdout)["results"] == json.loads(first.stdout)["results"]


def test_force_replaces_a_previous_export_and_its_cache_only(world, tmp_path):
    out = tmp_path / "export"
    shutil.copytree(world.export, out)
    (out / "gallery-cache").mkdir(exist_ok=True)
    (out / "gallery-cache" / "gallery-x.npz").write_bytes(b"cache")
    result = run("export", "onnx", "--checkpoint", world.checkpoint, "--out", out, "--force", "--exporter",
                 "torchscript", "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["gallery.onnx", "image_encoder.onnx", "manifest.json",
                                                     "scorer.onnx", "text_encoder.onnx"]


def test_an_unexpected_exception_is_one_line_with_a_saved_traceback(world, tmp_path, monkeypatch):
    import mia.core.data.records as records

    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(records, "parse_data_spec", broken)
    result = run("data", "info", "synthpedes")
    line = assert_internal_error(result)
    saved_at = Path(line.split("traceback saved to ")[1].split(" (set MIA_DEBUG")[0])
    assert "ZeroDivisionError: a bug" in saved_at.read_text() and "Traceback" in saved_at.read_text()
    monkeypatch.setenv("MIA_DEBUG", "1")
    with pytest.raises(ZeroDivisionError):
        run("data", "info", "synthpedes")


def assert_internal_error(result) -> str:
    lines = result.output.strip().splitlines()
    assert result.exit_code == 1 and len(lines) == 1 and "Traceback" not in result.output, result.output
    assert lines[0].startswith("Error: internal error (ZeroDivisionError: a bug); this is a bug in mia")
    return lines[0]


# --------------------------------------------------------------------------- kill and resume


def _train_process(data: Path, out: Path, epochs: int, *extra) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "mia.cli", "train", "--data", str(data), "--out", str(out), "--epochs",
               str(epochs), *map(str, TINY), *extra]
    # Ctrl-C reaches the run as from a terminal even when the suite itself was started in the
    # background, whose children inherit SIGINT ignored (and Python then never raises KeyboardInterrupt)
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _wait_for(path: Path, process: subprocess.Popen, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_killed_run_keeps_whole_checkpoints_and_resumes(tiny_synth, tmp_path):
    """SIGKILL at any moment leaves last.pt whole (temp file + rename); --resume finishes."""
    out = tmp_path / "run"
    process = _train_process(tiny_synth, out, 3)
    _wait_for(out / "metrics.jsonl", process)
    process.kill()
    process.communicate()
    payload = torch.load(out / "last.pt", weights_only=True)
    assert payload["epoch"] >= 1
    resumed = run("train", "--out", out, "--resume", "--workers", 0, "--quiet")
    assert resumed.exit_code == 0, resumed.output
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3]
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary file left behind


def test_ctrl_c_is_one_line_that_says_how_to_continue(tiny_synth, tmp_path):
    out = tmp_path / "run"
    process = _train_process(tiny_synth, out, 50)
    _wait_for(out / "last.pt", process)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 1 and "Traceback" not in stderr, stderr
    assert stderr.strip().splitlines()[-1] == (f"Error: interrupted; the last finished epoch is in {out}/last.pt: "
                                               f"continue with 'mia train --out {out} --resume'")
    assert torch.load(out / "last.pt", weights_only=True)["epoch"] >= 1  # whole, whenever the signal came


def test_export_force_into_the_run_directory_is_refused_and_the_run_is_intact(world):
    """The data-loss bug this suite started from: --force --out RUN_DIR replaced the run."""
    before = snapshot(world.run)
    result = run("export", "onnx", "--checkpoint", world.checkpoint, "--out", world.run, "--force")
    assert_one_line_failure(result, 1, (f"--out {world.run} contains {world.checkpoint}",))
    assert snapshot(world.run) == before and sorted(Path(p).name for p in before) == ["best.pt", "config.toml", "last.pt",
                                                                                       "metrics.jsonl"]


def test_file_names_that_are_not_utf8_are_listed_shown_and_linked(world, tmp_path):
    gallery = tmp_path / "gallery"
    shutil.copytree(world.gallery, gallery)
    odd = os.fsdecode(b"caf\xe9-\xff.jpg")  # Latin-1 bytes: not UTF-8
    shutil.copy(world.gallery / "train-1_0.jpg", gallery / odd)
    page = tmp_path / "page.html"
    result = run("search", "a man", "--model", world.export, "--gallery", gallery, "--device", "cpu", "--top-k", 4,
                 "--cache-dir", tmp_path / "cache", "--html", page)
    assert result.exit_code == 0, result.output
    text = page.read_text(encoding="utf-8")
    assert "caf\\xe9-\\xff.jpg" in text  # shown escaped
