"""The gallery index: two-stage search against exhaustive scoring, incremental updates,
shards built by two processes and merged, and damage that is one line, never a wrong answer."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mia.export.store import open_store
from mia.export.runtime import Retriever
from test_cli_train import run
from test_hostile_inputs import assert_one_line_failure

QUERIES = ["a man in a black coat and blue jeans", "a woman in a red dress with a white handbag",
           "a person in a grey hoodie and black trousers carrying a backpack"]


@pytest.fixture
def gallery(tiny_synth, tmp_path) -> Path:
    folder = tmp_path / "gallery"
    shutil.copytree(tiny_synth / "imgs", folder)
    return folder


def build(export, gallery, out, *extra, env=None):
    result = run("index", "build", "--model", export, "--gallery", gallery, "--out", out, "--workers", 0, *extra)
    assert result.exit_code == 0, result.output
    return result


def search(export, index, query, *extra) -> list[dict]:
    result = run("search", query, "--model", export, "--index", index, "--json", "--device", "cpu", *extra)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["results"]


def exhaustive(export, gallery, query, tmp_path, k: int = 10) -> list[dict]:
    result = run("search", query, "--model", export, "--gallery", gallery, "--json", "--device", "cpu",
                 "--top-k", k, "--cache-dir", tmp_path / "cache")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["results"]


def test_two_stage_search_with_enough_reranking_is_the_exhaustive_ranking(tiny_model, gallery, tmp_path):
    _, export = tiny_model
    build(export, gallery, tmp_path / "index")
    for query in QUERIES:
        staged = search(export, tmp_path / "index", query, "--top-k", 10, "--rerank", 72)
        full = exhaustive(export, gallery, query, tmp_path)
        assert [Path(r["path"]) for r in staged] == [Path(r["path"]).resolve() for r in full]
        assert [r["score"] for r in staged] == pytest.approx([r["score"] for r in full], abs=2e-3)  # float16 stripes


def two_stage_quality(*args):
    """The measure of ``benchmarks/bench_search.py --quality``, which owns it."""
    sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
    try:
        from bench_search import two_stage_quality as measure
    finally:
        sys.path.pop(0)
    return measure(*args)


def test_quality_measure_on_a_small_set(tiny_model, gallery, tiny_synth, tmp_path):
    """What benchmarks/bench_search.py --quality reports, on the tiny set's 144 queries."""
    _, export = tiny_model
    build(export, gallery, tmp_path / "index")
    retriever = Retriever(export, device="cpu")
    index = open_store(tmp_path / "index", retriever)
    entries = json.loads((tiny_synth / "reid_raw.json").read_text())
    by_path = {e["file_path"]: e for e in entries}
    gallery_pids = np.asarray([by_path[p.relative_to(gallery).as_posix()]["id"] for p in index.paths])
    captions = [c for e in entries for c in e["captions"]]
    query_pids = np.asarray([e["id"] for e in entries for _ in e["captions"]])
    quality = two_stage_quality(retriever, index, captions, query_pids, gallery_pids, [1, 30, 72])
    assert quality[72]["top_k_agreement"] == 1.0  # everything re-scored: the same ranking
    assert quality[72]["two_stage_mAP"] == pytest.approx(quality["exhaustive"]["mAP"])
    assert quality[1]["top_k_agreement"] <= quality[30]["top_k_agreement"] <= 1.0
    texts = retriever.encode_texts(captions)["text_global"]
    stored = np.asarray(index.arrays["image_global"])
    global_top1 = gallery_pids[np.argmax(texts @ (stored / np.linalg.norm(stored, axis=1, keepdims=True)).T, axis=1)]
    assert quality[1]["two_stage_R1"] == pytest.approx(100 * np.mean(global_top1 == query_pids))  # first stage alone

def test_incremental_update_encodes_only_new_and_changed_files(tiny_model, gallery, tmp_path):
    _, export = tiny_model
    out = tmp_path / "index"
    first = build(export, gallery, out)
    assert "72 images (0 reused, 72 encoded)" in first.output
    retriever = Retriever(export, device="cpu")
    before = open_store(out, retriever)
    kept = {p: before.arrays["image_global"][i].copy() for i, p in enumerate(before.paths)}
    changed = gallery / "train" / "1_0.jpg"
    stat = changed.stat()
    os.utime(changed, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    (gallery / "train" / "2_0.jpg").unlink()
    shutil.copy(gallery / "train" / "3_0.jpg", gallery / "newcomer.jpg")
    second = build(export, gallery, out)
    assert "72 images (70 reused, 2 encoded)" in second.output
    after = open_store(out, retriever)
    names = [p.relative_to(gallery.resolve()).as_posix() for p in after.paths]
    assert "train/2_0.jpg" not in names and "newcomer.jpg" in names and names == sorted(names)
    for i, path in enumerate(after.paths):
        if path in kept:
            np.testing.assert_array_equal(after.arrays["image_global"][i], kept[path])
    newcomer = after.arrays["image_global"][names.index("newcomer.jpg")]
    np.testing.assert_allclose(newcomer, kept[gallery.resolve() / "train" / "3_0.jpg"], atol=1e-6)


def test_two_processes_build_shards_that_merge_into_the_single_build(tiny_model, gallery, tmp_path):
    _, export = tiny_model
    build(export, gallery, tmp_path / "single")
    env = {**os.environ, "WORLD_SIZE": "2", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "mia.cli", "index", "build", "--model", str(export), "--gallery", str(gallery),
               "--out", str(tmp_path / "sharded"), "--workers", "0"]
    processes = [subprocess.Popen(command, env={**env, "RANK": str(rank)}, stderr=subprocess.PIPE, text=True)
                 for rank in (0, 1)]
    for process in processes:
        assert process.wait(timeout=180) == 0, process.stderr.read()
    assert sorted(p.name for p in tmp_path.iterdir() if ".shard-" in p.name) == ["sharded.shard-0-of-2",
                                                                                 "sharded.shard-1-of-2"]
    merged = run("index", "merge", tmp_path / "sharded")
    assert merged.exit_code == 0 and "merged 2 shards, 72 images" in merged.output
    single = open_store(tmp_path / "single")
    sharded = open_store(tmp_path / "sharded")
    assert sharded.paths == single.paths
    for name in single.arrays:
        np.testing.assert_array_equal(sharded.arrays[name], single.arrays[name])
    for query in QUERIES:
        assert search(export, tmp_path / "sharded", query) == search(export, tmp_path / "single", query)


def test_a_damaged_or_foreign_index_is_one_line(tiny_model, gallery, tmp_path):
    _, export = tiny_model
    out = tmp_path / "index"
    build(export, gallery, out)
    verified = run("index", "verify", out)
    assert verified.exit_code == 0 and "72 images, FAISS flat, every file intact" in verified.output
    damaged = tmp_path / "damaged"
    shutil.copytree(out, damaged)
    data = (damaged / "image_global.npy").read_bytes()
    (damaged / "image_global.npy").write_bytes(data[: len(data) // 2])
    assert_one_line_failure(run("search", "a man", "--model", export, "--index", damaged), 1,
                            ("image_global.npy has", "bytes", "rebuild it with 'mia index build'"))
    flipped = tmp_path / "flipped"
    shutil.copytree(out, flipped)
    data = bytearray((flipped / "paths.json").read_bytes())
    data[5] ^= 1
    (flipped / "paths.json").write_bytes(bytes(data))
    assert_one_line_failure(run("search", "a man", "--model", export, "--index", flipped), 1,
                            ("paths.json: sha256 mismatch",))
    meta = json.loads((out / "index.json").read_text())
    meta["model_digest"] = "0" * 64
    foreign = tmp_path / "foreign"
    shutil.copytree(out, foreign)
    (foreign / "index.json").write_text(json.dumps(meta))
    assert_one_line_failure(run("search", "a man", "--model", export, "--index", foreign), 1,
                            ("was built with another model",))
    assert_one_line_failure(run("index", "merge", tmp_path / "nothing"), 1, ("no shards to merge",))
    assert_one_line_failure(run("search", "a man", "--model", export, "--index", out, "--gallery", gallery), 1,
                            ("give exactly one of --gallery FOLDER and --index INDEX",))
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    assert_one_line_failure(run("index", "build", "--model", export, "--gallery", gallery, "--out", mine), 1,
                            ("holds files that are not a mia index (notes.txt)",))
    assert (mine / "notes.txt").read_text() == "mine"
