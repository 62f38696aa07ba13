"""CUDA checks; skipped where there is no GPU (CI never has one).

Run them on a GPU machine with ``python -m pytest -q tests/test_gpu.py``.
"""

import json

import pytest
import torch

from test_cli_train import TINY, run

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

SUBSETS = ["global", "part", "fine", "global,part", "global,fine", "part,fine", "global,part,fine"]


def cuda_args():
    options = list(TINY)
    options[options.index("--device") + 1] = "cuda"
    return options


@pytest.mark.parametrize("align", SUBSETS)
def test_every_subset_trains_on_cuda_and_matches_cpu_evaluation(tiny_synth, tmp_path, align):
    out = tmp_path / align.replace(",", "+")
    result = run("train", "--data", tiny_synth, "--out", out, *cuda_args(), "--epochs", 2, "--align", align)
    assert result.exit_code == 0, result.output
    history = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert "device cuda" in result.output and history[-1]["loss"] < history[0]["loss"] * 1.5
    on_gpu = json.loads(run("eval", "--checkpoint", out / "last.pt", "--json", "--workers", 0, "--device", "cuda",
                            "--split", "val").output.strip().splitlines()[-1])
    on_cpu = json.loads(run("eval", "--checkpoint", out / "last.pt", "--json", "--workers", 0, "--device", "cpu",
                            "--split", "val").output.strip().splitlines()[-1])
    for key in ("R1", "R5", "R10", "mAP"):  # bf16 on the GPU vs fp32 on the CPU: a rank may flip
        assert abs(on_gpu[key] - on_cpu[key]) <= 10.0, key


def test_onnx_runtime_cuda_provider_when_available(tiny_synth, tmp_path):
    import onnxruntime as ort

    from mia.export.exporting import export_model
    from mia.export.runtime import CUDA, Retriever

    if CUDA not in ort.get_available_providers():
        pytest.skip("this onnxruntime has no CUDA provider")
    out = tmp_path / "run"
    assert run("train", "--data", tiny_synth, "--out", out, *cuda_args(), "--epochs", 1).exit_code == 0
    export_model(out / "best.pt", tmp_path / "model", "onnx", exporter="torchscript", log=lambda m: None)
    retriever = Retriever(tmp_path / "model", device="cuda")
    assert retriever.providers[0] == CUDA
    images = sorted((tiny_synth / "imgs").rglob("*.jpg"))[:4]
    assert len(retriever.search("a man in a black coat", retriever.encode_images(images), top_k=2)) == 2


@torch.no_grad()
def test_fused_scoring_kernels_on_cuda_match_the_cpu():
    """Scoring on CUDA goes through the Triton kernels of core.fused_pool (compiled here,
    interpreted in CI); every alignment's score must equal the CPU's fp32 one."""
    from mia.core.runtime import attention
    from mia.core.modeling.features import ImageFeatures, TextFeatures
    from mia.core.modeling.model import ModelSpec, create_model

    g = torch.Generator().manual_seed(0)
    model = create_model(ModelSpec(image_encoder="resnet18", alignments=["global", "part", "fine"], embed_dim=64,
                                   vocab_size=5, num_classes=2)).eval()
    mask = torch.arange(10)[None] < torch.randint(0, 11, (300,), generator=g)[:, None]
    text = TextFeatures(torch.randn(300, 64, generator=g), torch.randn(300, 10, 64, generator=g), mask)
    image = ImageFeatures(torch.randn(500, 64, generator=g), torch.randn(500, 6, 64, generator=g))
    on_cpu = model.similarity(text, image)
    cuda = torch.device("cuda")
    text, image = TextFeatures(*(t.to(cuda) for t in text)), ImageFeatures(*(t.to(cuda) for t in image))
    assert attention.fused_scoring(text.phrases)
    on_gpu = model.to(cuda).similarity(text, image)
    assert torch.allclose(on_gpu.cpu(), on_cpu, atol=1e-4)
