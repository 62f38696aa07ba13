"""``mia search`` end to end on an exported tiny model: ranking, the gallery feature cache,
unreadable files, HTML escaping, one-line errors, and a search path free of torch."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import onnxruntime as ort
import pytest
from conftest import write_image
from test_cli_train import one_line_error, run

from mia.export.store import GalleryStore, cached_store, list_gallery
from mia.export.html import evaluation_page
from mia.export.runtime import CUDA, Retriever, gpu_present

# Train identities (the model has fit them) whose clothes differ in colour and type:
# bald man in black coat, red shirt + pink skirt, yellow shirt, green dress, grey hoodie.
IDS = (1, 4, 5, 10, 13)


def captions_of(tiny_synth, person: int) -> list[str]:
    entries = json.loads((tiny_synth / "reid_raw.json").read_text())
    return next(e["captions"] for e in entries if e["file_path"] == f"train/{person}_0.jpg")


@pytest.fixture
def gallery(tiny_synth, tmp_path) -> Path:
    """One crop each of the ``IDS`` people, named ``person<ID>.jpg``."""
    folder = tmp_path / "gallery"
    folder.mkdir()
    for person in IDS:
        shutil.copy(tiny_synth / "imgs" / "train" / f"{person}_0.jpg", folder / f"person{person}.jpg")
    return folder


def search(model_dir, gallery, query, *extra):
    result = run("search", query, "--model", model_dir, "--gallery", gallery, "--device", "cpu", *extra)
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    return result


def search_json(model_dir, gallery, query, *extra) -> dict:
    return json.loads(search(model_dir, gallery, query, "--json", *extra).stdout)


def build(retriever, gallery, cache, logs=None) -> tuple[GalleryStore, int, int]:
    """The store of ``gallery`` in ``cache``, and how many rows were (encoded, reused)."""
    logs = logs if logs is not None else []
    store = cached_store(retriever, gallery, cache, log=logs.append, show_progress=False)
    reused, encoded = map(int, re.search(r"gallery: \d+ images \((\d+) from cache, (\d+) encoded\)", logs[-1]).groups())
    return store, encoded, reused


def test_list_gallery_is_recursive_sorted_and_case_insensitive(tmp_path):
    for name in ("b.JPG", "a.png", "sub/c.jpeg", "sub/deeper/d.WebP"):
        write_image(tmp_path / name, fmt="PNG")
    (tmp_path / "notes.txt").write_text("not an image")
    found = [p.relative_to(tmp_path).as_posix() for p in list_gallery(tmp_path)]
    assert found == ["a.png", "b.JPG", "sub/c.jpeg", "sub/deeper/d.WebP"]


def test_each_description_finds_its_person_first(model_dir, gallery, tiny_synth):
    for person in IDS:
        for caption in captions_of(tiny_synth, person):
            answer = search_json(model_dir, gallery, caption, "--top-k", 3)
            assert answer["provider"] == "CPUExecutionProvider" and answer["query"] == caption
            ranked = [Path(r["path"]).name for r in answer["results"]]
            assert ranked[0] == f"person{person}.jpg", (caption, ranked)
            assert [r["rank"] for r in answer["results"]] == [1, 2, 3]
            scores = [r["score"] for r in answer["results"]]
            assert scores == sorted(scores, reverse=True)


def test_text_output_has_rank_score_path_lines(model_dir, gallery):
    result = search(model_dir, gallery, "a woman in a green dress", "--top-k", 2)
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 2
    rank, score, path = lines[0].split(maxsplit=2)
    assert rank == "1" and score == f"{float(score):.4f}" and Path(path).parent == gallery


def test_cache_is_reused_refreshed_and_follows_the_folder(model_dir, gallery, tmp_path):
    retriever, cache = Retriever(model_dir, device="cpu"), tmp_path / "cache"
    first, encoded, reused = build(retriever, gallery, cache)
    assert (encoded, reused, len(first.paths)) == (5, 0, 5)
    [store_dir] = cache.glob("gallery-*")
    written = (store_dir / "index.json").stat().st_mtime_ns

    logs = []
    again, encoded, reused = build(retriever, gallery, cache, logs)
    assert (encoded, reused) == (0, 5) and "gallery: 5 images (5 from cache, 0 encoded)" in logs
    assert (store_dir / "index.json").stat().st_mtime_ns == written  # nothing changed, nothing rewritten
    for name, array in first.arrays.items():
        np.testing.assert_array_equal(again.arrays[name], array)

    changed = gallery / "person4.jpg"
    stat = changed.stat()
    os.utime(changed, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    assert build(retriever, gallery, cache)[1] == 1  # a newer mtime: encoded again...
    assert build(retriever, gallery, cache)[1] == 0  # ...once

    (gallery / "sub").mkdir()
    shutil.copy(gallery / "person1.jpg", gallery / "sub" / "newcomer.png")
    (gallery / "person13.jpg").unlink()
    mixed, encoded, reused = build(retriever, gallery, cache)
    names = [p.relative_to(gallery.resolve()).as_posix() for p in mixed.paths]
    assert names == ["person1.jpg", "person10.jpg", "person4.jpg", "person5.jpg", "sub/newcomer.png"]
    assert (encoded, reused) == (1, 4)
    fresh = retriever.encode_images(mixed.paths)  # cached and new rows, each in its file's place
    for name, array in fresh.arrays.items():  # stripes are stored in float16
        np.testing.assert_allclose(np.asarray(mixed.arrays[name], np.float32), array, rtol=2e-3, atol=2e-3)

    other_model = Retriever(model_dir, device="cpu")
    other_model.digest = "0" * 64
    assert build(other_model, gallery, cache)[1] == 5
    assert len(list(cache.glob("gallery-*"))) == 2


def test_a_cache_of_the_earlier_format_is_replaced_with_one_line(model_dir, gallery, tmp_path):
    from mia.export.store import cache_location

    retriever, cache = Retriever(model_dir, device="cpu"), tmp_path / "cache"
    earlier = cache_location(cache, retriever.digest, gallery.resolve())
    earlier = earlier.with_name(earlier.name + ".npz")
    cache.mkdir()
    earlier.write_bytes(b"PK an npz of the previous version")
    logs = []
    store, encoded, _ = build(retriever, gallery, cache, logs)
    assert encoded == 5 and len(store) == 5 and not earlier.exists()
    assert [line for line in logs if "earlier mia version" in line] == [
        f"gallery: replacing the feature cache of an earlier mia version ({earlier.name}); encoding the gallery again"]


def test_cli_caches_in_the_users_cache_folder_by_default(model_dir, gallery):
    search(model_dir, gallery, "a man in a grey hoodie")
    assert not (model_dir / "gallery-cache").exists()  # the model folder may be read-only or shared
    assert list((Path(os.environ["MIA_CACHE_DIR"]) / "galleries").glob("gallery-*/index.json"))
    assert "gallery: 5 images (5 from cache, 0 encoded)" in search(model_dir, gallery, "a man").stderr


def test_unreadable_images_are_reported_and_skipped(model_dir, gallery, tiny_synth):
    (gallery / "notes.jpg").write_text("not an image")
    (gallery / "cut.png").write_bytes((gallery / "person1.jpg").read_bytes()[:300])
    result = search(model_dir, gallery, captions_of(tiny_synth, 10)[0], "--json")
    assert "skipped 2 unreadable image(s): cut.png" in result.stderr and "notes.jpg" in result.stderr
    ranked = [Path(r["path"]).name for r in json.loads(result.stdout)["results"]]
    assert sorted(ranked) == sorted(f"person{p}.jpg" for p in IDS) and ranked[0] == "person10.jpg"


def test_html_page_shows_the_query_as_text(model_dir, gallery, tmp_path):
    shutil.copy(gallery / "person5.jpg", gallery / 'odd & "named".jpg')
    page = tmp_path / "out" / "results.html"
    search(model_dir, gallery, "<script>alert(1)</script>", "--html", page)
    text = page.read_text()
    assert "<script>alert(1)</script>" not in text and "<script" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert text.count('src="data:image/jpeg;base64,') == 6  # every thumbnail embedded
    assert "odd &amp; &quot;named&quot;.jpg" in text and 'odd & "named"' not in text


def test_evaluation_page_escapes_marks_and_filters(tmp_path):
    names = ["a&b.jpg", 'q"uote.jpg', "<c>.jpg"]
    gallery_paths = [str(write_image(tmp_path / "imgs" / name)) for name in names]
    queries = ['a <b> & "c"', "plain words", "third one"]
    ranking = np.array([[0, 1, 2], [0, 1, 2], [1, 0, 2]])  # top-1 right, wrong, wrong
    scores = np.array([[0.9, 0.5, 0.1]] * 3)
    page = tmp_path / "report" / "eval.html"
    arguments = dict(title="test <split>", metrics={"R1": 33.333, "R5": 100.0, "R10": 100.0, "mAP": 61.1, "mINP": 40.0},
                     queries=queries, query_pids=[1, 2, 3], gallery_paths=gallery_paths, gallery_pids=[1, 2, 3],
                     ranking=ranking, scores=scores)

    assert evaluation_page(page, **arguments, failures_only=False) == 3
    text = page.read_text()
    assert text.count('class="tile hit"') == 3 and text.count('class="tile miss"') == 6
    assert "a &lt;b&gt; &amp; &quot;c&quot;" in text and "<b>" not in text and "<c>" not in text
    assert "a&amp;b.jpg" in text and "q&quot;uote.jpg" in text and "test &lt;split&gt;" in text
    assert "<th>mINP</th>" in text and "33.33" in text
    for src in re.findall(r'<img src="([^"]+)"', text):
        assert not src.startswith("data:") and (page.parent / unquote(src)).is_file(), src

    assert evaluation_page(page, **arguments, failures_only=True) == 2
    text = page.read_text()
    assert text.count('class="tile hit"') == 2 and text.count('class="tile miss"') == 4
    assert "plain words" in text and "a &lt;b&gt;" not in text


def test_bad_requests_give_one_line_errors(model_dir, gallery, tmp_path):
    def search_error(model, folder, *fragments, extra=()):
        one_line_error(run("search", "someone", "--model", model, "--gallery", folder, "--device", "cpu", *extra),
                       *fragments)

    (tmp_path / "empty").mkdir()
    search_error(model_dir, tmp_path / "empty", "no .jpg/.jpeg/.png/.webp images found")
    search_error(model_dir, tmp_path / "nowhere", "--gallery", "no such directory")
    search_error(tmp_path / "no-model", gallery, "not an exported mia model")
    search_error(model_dir, gallery, "'--top-k'", "expected an integer >= 1, got '0'", extra=("--top-k", 0))
    tampered = tmp_path / "tampered"
    shutil.copytree(model_dir, tampered)
    data = bytearray((tampered / "scorer.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tampered / "scorer.onnx").write_bytes(bytes(data))
    search_error(tampered, gallery, "scorer.onnx", "sha256 mismatch")


def test_a_gallery_of_only_broken_files_is_an_error(model_dir, tmp_path):
    (tmp_path / "broken.jpg").write_text("not an image")
    result = run("search", "someone", "--model", model_dir, "--gallery", tmp_path, "--device", "cpu")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "Error: --gallery" in result.output and "none of the 1 images could be read" in result.output


@pytest.mark.skipif(gpu_present() and CUDA in ort.get_available_providers(),
                    reason="checks the no-CUDA error")
def test_cuda_without_cuda_is_a_clear_error(model_dir, gallery):
    one_line_error(run("search", "someone", "--model", model_dir, "--gallery", gallery, "--device", "cuda"),
                   "CUDA is not available")


SEARCH_WITHOUT_TORCH = """
import sys
from mia.export.html import search_page
from mia.export.runtime import Retriever
from mia.export.store import cached_store

model, gallery, cache, page = sys.argv[1:]
retriever = Retriever(model, device="cpu")
store = cached_store(retriever, gallery, cache, log=lambda message: None, show_progress=False)
hits = store.rank(retriever, "a man in a black coat and white trousers", 3)
search_page(page, "a man", hits, "tiny")
assert "torch" not in sys.modules, "the search path imported torch"
print(len(hits))
"""


def test_the_search_path_never_imports_torch(model_dir, gallery, tmp_path):
    result = subprocess.run([sys.executable, "-c", SEARCH_WITHOUT_TORCH, str(model_dir), str(gallery),
                             str(tmp_path / "cache"), str(tmp_path / "page.html")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "3" and (tmp_path / "page.html").is_file()


def test_the_search_command_never_imports_torch(model_dir, gallery, tmp_path):
    from test_plugins import NO_TORCH

    done = subprocess.run([sys.executable, "-c", NO_TORCH, "search", "a man in a black coat", "--model", str(model_dir),
                           "--gallery", str(gallery), "--cache-dir", str(tmp_path / "cache"), "--device", "cpu"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.strip().splitlines()) == 5


THIRD_PARTY_CHUNKER = """
from mia.core import hookimpl


def upper_chunker(option):
    def chunk(caption):
        return [word for word in caption.split() if word.isupper()]  # SHOUTED words are the phrases
    return chunk


@hookimpl
def register_phrase_chunkers(register):
    register("shouted", upper_chunker, description="upper-case words")
"""

SERVE_WITH_CHUNKER = """
import sys
from mia.export.runtime import Retriever
retriever = Retriever(sys.argv[1], device="cpu")
arrays = retriever.text_arrays(["a man in a RED coat and BLUE jeans"])
assert (arrays["phrases"][0, :, 0] != 0).sum() == 2, arrays["phrases"]
retriever.search("a man in a RED coat", retriever.encode_images(sys.argv[2:]), top_k=2)
leaked = [name for name in ("torch", "torchvision") if name in sys.modules]
assert not leaked, leaked
print(retriever.chunker.__module__)
"""


def test_a_third_party_chunker_serves_without_torch(tiny_model, tiny_synth, tmp_path, monkeypatch):
    """A model trained with a plugin's chunker is served by the torch-free runtime, which
    finds the chunker through the plugin's entry point."""
    from test_plugins import install_distribution

    _, export = tiny_model
    install_distribution(tmp_path, monkeypatch, "mia_shouted", "shouted", THIRD_PARTY_CHUNKER)
    model = tmp_path / "model"
    shutil.copytree(export, model, ignore=shutil.ignore_patterns("gallery-cache"))
    manifest = json.loads((model / "manifest.json").read_text())
    manifest["text"]["chunker"] = "shouted"
    (model / "manifest.json").write_text(json.dumps(manifest))
    images = [str(p) for p in sorted((tiny_synth / "imgs").rglob("*.jpg"))[:3]]
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    env.pop("MIA_LOAD_PLUGINS")  # a deployment loads its installed plugins
    done = subprocess.run([sys.executable, "-c", SERVE_WITH_CHUNKER, str(model), *images], capture_output=True,
                          text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "mia_shouted"
