"""Export every alignment combination, verify it, run the recall check, and use the
exported directory without torch and without mia."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from mia.core.base.errors import MiaError
from mia.export.exporting import export_model
from mia.export.manifest import read_manifest
from test_cli_train import TINY, run

COMBINATIONS = [["global"], ["part"], ["fine"], ["global", "part"], ["global", "fine"], ["part", "fine"],
                ["global", "part", "fine"]]


@pytest.fixture(scope="module")
def trained_all(tiny_synth, tmp_path_factory):
    """One tiny model trained with all three alignments."""
    out = tmp_path_factory.mktemp("export-run") / "run"
    result = run("train", "--data", tiny_synth, "--out", out, "--epochs", 2, *TINY, "--align", "global,part,fine")
    assert result.exit_code == 0, result.output
    return out / "best.pt"


def checkpoint_for(trained: Path, combination: list[str], directory: Path) -> Path:
    """The trained model scoring with only ``combination`` (what a run of it would export)."""
    payload = torch.load(trained, weights_only=True)
    payload["active"] = combination
    payload["spec"]["weights"] = {name: 0.5 + i for i, name in enumerate(combination)}
    path = directory / f"{'+'.join(combination)}.pt"
    torch.save(payload, path)
    return path


@pytest.mark.parametrize("combination", COMBINATIONS, ids=["+".join(c) for c in COMBINATIONS])
def test_every_combination_exports_verifies_and_passes_the_recall_check(trained_all, tiny_synth, tmp_path, combination):
    checkpoint = checkpoint_for(trained_all, combination, tmp_path)
    out = tmp_path / "model"
    manifest = export_model(checkpoint, out, "onnx", exporter="torchscript", check_data=str(tiny_synth),
                            device="cpu", log=lambda m: None)
    assert sorted(manifest["files"]) == ["gallery.onnx", "image_encoder.onnx", "scorer.onnx", "text_encoder.onnx"]
    assert manifest["alignments"] == combination
    uses_phrases = combination != ["global"]
    scorer_inputs = [i["name"] for i in manifest["graphs"]["scorer"]["inputs"]]
    gallery_inputs = [i["name"] for i in manifest["graphs"]["gallery"]["inputs"]]
    assert ("text_phrases" in scorer_inputs) == uses_phrases and ("image_parts" in gallery_inputs) == uses_phrases
    prepared = [o["name"] for o in manifest["graphs"]["gallery"]["outputs"]]
    assert prepared == [i for i in scorer_inputs if i not in ("text_global", "text_phrases", "phrase_mask")]
    assert all(name.split("_")[0] in combination for name in prepared)
    assert manifest["text"]["chunker"] == ("rules" if uses_phrases else None)
    tokens = manifest["graphs"]["text_encoder"]["inputs"][0]
    assert tokens["name"] == "tokens" and isinstance(tokens["shape"][0], str) and isinstance(tokens["shape"][1], str)
    verification = manifest["verification"]
    assert all(diff <= 1e-4 * 50 for diff in verification["max_abs_diff"].values())
    assert verification["recall_check"]["max_gap"] <= 0.1
    assert json.loads((out / "manifest.json").read_text())["verification"]["recall_check"]["split"] == "test"


def test_dynamo_exporter_and_cli(trained_all, tiny_synth, tmp_path):
    out = tmp_path / "dynamo"
    result = run("export", "onnx", "--checkpoint", trained_all, "--out", out, "--check-data", tiny_synth,
                 "--check-split", "val", "--device", "cpu")
    assert result.exit_code == 0, result.output
    assert "recall check passed on val" in result.output
    manifest = read_manifest(out)
    assert manifest["exporter"] == "dynamo" and manifest["opset"] == 18
    # the exported model evaluates through `mia eval --backend onnx` to the same numbers
    torch_eval = json.loads(run("eval", "--checkpoint", trained_all, "--json", "--workers", 0, "--device", "cpu")
                            .output.strip().splitlines()[-1])
    onnx_eval = json.loads(run("eval", "--backend", "onnx", "--model", out, "--data", tiny_synth, "--json", "--device", "cpu")
                           .output.strip().splitlines()[-1])
    assert onnx_eval["providers"] == ["CPUExecutionProvider"]
    for key in ("R1", "R5", "R10", "mAP"):
        assert abs(onnx_eval[key] - torch_eval[key]) <= 0.1
    shown = run("eval", "--backend", "onnx", "--model", out, "--data", tiny_synth, "--device", "cpu")
    for stage in ("encode images (CPUExecutionProvider)", "encode captions", "score"):
        assert f"\n{stage} " in "\n" + shown.stderr, shown.stderr


def test_failed_export_leaves_nothing_and_existing_out_needs_force(trained_all, tmp_path, monkeypatch):
    out = tmp_path / "x"
    import mia.export.exporting as exporting

    monkeypatch.setattr(exporting, "TOLERANCE", -1.0)  # every comparison now fails
    with pytest.raises(MiaError, match="verification failed"):
        export_model(trained_all, out, "onnx", exporter="torchscript", log=lambda m: None)
    assert not out.exists() and not list(tmp_path.glob(".x*"))
    monkeypatch.undo()
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(MiaError, match="pass --force"):
        export_model(trained_all, out, "onnx", exporter="torchscript", log=lambda m: None)
    assert (out / "keep.txt").read_text() == "mine"


def test_torchscript_export_loads_without_mia(trained_all, tiny_synth, tmp_path):
    out = tmp_path / "ts"
    result = run("export", "torchscript", "--checkpoint", trained_all, "--out", out, "--check-data", tiny_synth,
                 "--device", "cpu")
    assert result.exit_code == 0, result.output
    manifest = read_manifest(out)
    assert sorted(manifest["files"]) == ["gallery.pt", "image_encoder.pt", "scorer.pt", "text_encoder.pt"]
    script = textwrap.dedent(f"""
        import sys
        sys.modules["mia"] = None  # importing mia now fails: the files must not need it
        import torch
        image = torch.jit.load({str(out / 'image_encoder.pt')!r})
        text = torch.jit.load({str(out / 'text_encoder.pt')!r})
        gallery = torch.jit.load({str(out / 'gallery.pt')!r})
        scorer = torch.jit.load({str(out / 'scorer.pt')!r})
        g, p = image(torch.randn(3, 3, 64, 32))
        tg, tp, mask = text(torch.tensor([[2, 3, 4, 0]]), torch.tensor([[[2, 3], [4, 0]]]))
        print(tuple(scorer(tg, tp, mask, *gallery(g, p)).shape))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "(1, 3)"


def test_retriever_never_imports_torch(trained_all, tiny_synth, tmp_path):
    out = tmp_path / "m"
    export_model(trained_all, out, "onnx", exporter="torchscript", log=lambda m: None)
    images = sorted((tiny_synth / "imgs").rglob("*.jpg"))[:5]
    script = textwrap.dedent(f"""
        import sys
        from mia.export.runtime import Retriever
        retriever = Retriever({str(out)!r}, device="auto")
        gallery = retriever.encode_images({[str(p) for p in images]!r})
        hits = retriever.search("a man in a red jacket and blue jeans", gallery, top_k=3)
        assert len(hits) == 3 and retriever.providers[0] == "CPUExecutionProvider", (hits, retriever.providers)
        assert "torch" not in sys.modules, "torch was imported"
        print("ok", retriever.device)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok cpu"


def test_runtime_errors_are_one_line(trained_all, tmp_path):
    from mia.export.runtime import Retriever

    out = tmp_path / "m"
    export_model(trained_all, out, "onnx", exporter="torchscript", log=lambda m: None)
    with pytest.raises(MiaError, match="CUDA is not available"):
        Retriever(out, device="cuda")
    data = bytearray((out / "scorer.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (out / "scorer.onnx").write_bytes(bytes(data))
    with pytest.raises(MiaError, match="scorer.onnx: sha256 mismatch"):
        Retriever(out)
    (out / "scorer.onnx").unlink()
    with pytest.raises(MiaError, match="scorer.onnx: missing"):
        Retriever(out)
    with pytest.raises(MiaError, match="not an exported mia model"):
        Retriever(tmp_path)
    result = run("export", "onnx", "--checkpoint", tmp_path / "nope.pt", "--out", tmp_path / "o")
    assert result.exit_code == 1 and result.output.strip().splitlines() == [f"Error: checkpoint {tmp_path / 'nope.pt'}: file not found"]


def test_plain_onnxruntime_client_of_the_docs(trained_all, tiny_synth, tmp_path):
    """docs/deploy.md's client (onnxruntime + numpy + Pillow, no mia) ranks like the Retriever."""
    import re

    from mia.export.runtime import Retriever

    out = tmp_path / "global-model"
    export_model(checkpoint_for(trained_all, ["global"], tmp_path), out, "onnx", exporter="torchscript",
                 log=lambda m: None)
    page = (Path(__file__).parents[1] / "docs" / "deploy.md").read_text()
    source = re.search(r"```python\n(# plain_onnxruntime_search\.py\n.*?)```", page, re.S).group(1)
    assert len(source.strip().splitlines()) <= 16
    gallery = [str(p) for p in sorted((tiny_synth / "imgs").rglob("*.jpg"))[:6]]
    query = "a woman in a red jacket and blue jeans"
    source = re.sub(r"^model_dir, gallery, query = .*$", f"model_dir, gallery, query = {str(out)!r}, {gallery!r}, {query!r}",
                    source, flags=re.M)
    script = "import sys\nsys.modules['mia'] = None\n" + source
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    printed = [line.split() for line in done.stdout.strip().splitlines()]
    retriever = Retriever(out, device="cpu")
    expected = retriever.search(query, retriever.encode_images(gallery), top_k=len(gallery))
    assert [path for _, path in printed] == [gallery[i] for i, _ in expected]
    assert [float(score) for score, _ in printed] == pytest.approx([s for _, s in expected], abs=1e-4)  # printed to 4 places
