"""The fused Triton kernels that score on CUDA, checked on the CPU through Triton's
interpreter against the eager forms (CI has no GPU; test_gpu.py runs them compiled)."""

import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("triton")

CHECK = textwrap.dedent("""
    import torch
    from mia.core.runtime import attention, fused_pool
    from mia.core.modeling.features import ImageFeatures, TextFeatures
    from mia.plugins.alignments.fine_align import FineAlignment
    from mia.plugins.alignments.part_align import PartAlignment

    g = torch.Generator().manual_seed(0)
    T, M, K, I, D = 3, 5, 6, 37, 16  # no size a power of two or a multiple of a block
    parts = torch.randn(I, K, D, generator=g)
    phrases = torch.randn(T, M, D, generator=g)
    mask = torch.rand(T, M, generator=g) > 0.3
    mask[0] = False  # a caption without phrases
    mask[1, :2] = True
    columns, stripe_log_norm, stripe_gram = attention.stripe_state(parts)
    unit, phrase_log_norm, phrase_gram = attention.phrase_state(phrases, mask)
    logits = ((unit.reshape(-1, D) / 0.05) @ columns).view(T, M, K, I)
    worst = 0.0
    for dtype in (torch.float32, torch.bfloat16):  # bf16: the GEMM's output under CUDA autocast
        low = logits.to(dtype)
        eager = attention._stripe_pool_unrolled(low.float(), low.float(), stripe_log_norm, stripe_gram)
        fused = fused_pool.stripe_pool(low, low, stripe_log_norm, stripe_gram, attention._FLOOR, block=16)
        worst = max(worst, (eager - fused).abs().max().item())
        flat = low.view(T, M, -1)
        with torch.no_grad():
            eager = attention.phrase_pool(flat.float(), flat.float(), phrase_log_norm, phrase_gram)
        fused = fused_pool.phrase_pool(flat, flat, phrase_log_norm, phrase_gram, attention._FLOOR, block=16)
        worst = max(worst, (eager - fused).abs().max().item())

    # the whole alignments, with the kernels dispatched as on CUDA
    text = TextFeatures(torch.randn(T, D, generator=g), phrases, mask)
    image = ImageFeatures(torch.randn(I, D, generator=g), parts)
    alignments = [FineAlignment(D), PartAlignment(D).eval()]
    with torch.no_grad():
        expected = [alignment.similarity(text, image) for alignment in alignments]
        attention.fused_scoring = lambda *tensors: True
        got = [alignment.similarity(text, image) for alignment in alignments]
    worst = max(worst, *((a - b).abs().max().item() for a, b in zip(got, expected)))
    print(worst)
""")


def test_fused_kernels_equal_the_eager_pooling_in_the_interpreter():
    env = {**os.environ, "TRITON_INTERPRET": "1", "MIA_LOAD_PLUGINS": ""}
    done = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert float(done.stdout.strip().splitlines()[-1]) < 1e-5


@pytest.mark.filterwarnings("ignore:`torch.jit.trace` is deprecated")
def test_the_kernels_are_used_only_for_plain_scoring():
    import torch

    from mia.core.runtime import attention, policy

    leaf = torch.ones(3, requires_grad=True)
    assert not policy.plain_ops(leaf)  # training: autograd needs the eager forms
    with torch.no_grad():
        assert policy.plain_ops(leaf)
        traced = []
        torch.jit.trace(lambda x: traced.append(policy.plain_ops(x)) or x, torch.ones(2), check_trace=False)
        assert traced == [False]  # TorchScript / ONNX export traces the eager forms
    assert not attention.fused_scoring(torch.ones(2))  # a CPU tensor
