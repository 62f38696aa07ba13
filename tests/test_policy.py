"""The execution policy: defaults per device, overrides by option and environment, one
line printed at the start of training, and the active policy followed by scoring code."""

from __future__ import annotations

import pytest
import torch

from mia.core.runtime import fused_pool
from mia.core.base.errors import MiaError
from mia.core.runtime.policy import autocast, current, make_policy
from test_cli_train import TINY, run

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    for name in ("MIA_WORKERS", "MIA_EVAL_CHUNK", "MIA_PRECISION", "MIA_FUSED_KERNELS"):
        monkeypatch.delenv(name, raising=False)


def test_defaults_follow_the_device(monkeypatch):
    monkeypatch.setattr(fused_pool, "available", True)
    monkeypatch.setattr("os.cpu_count", lambda: 16)
    cpu, cuda = make_policy(CPU), make_policy(CUDA)
    assert (cpu.precision, cpu.workers, cpu.eval_chunk, cpu.fused_kernels, cpu.channels_last) == \
        ("fp32", 2, 256, False, False)
    assert (cuda.precision, cuda.workers, cuda.eval_chunk, cuda.fused_kernels, cuda.channels_last) == \
        ("bf16", 15, 1024, True, True)
    assert cuda.describe() == ("policy: device cuda, bf16 autocast, channels_last, 15 data workers, "
                               "scoring 1024 queries at a time, fused scoring kernels")


def test_environment_overrides_defaults_and_options_override_both(monkeypatch):
    monkeypatch.setattr(fused_pool, "available", True)
    monkeypatch.setenv("MIA_WORKERS", "3")
    monkeypatch.setenv("MIA_EVAL_CHUNK", "77")
    monkeypatch.setenv("MIA_PRECISION", "fp32")
    monkeypatch.setenv("MIA_FUSED_KERNELS", "0")
    policy = make_policy(CUDA)
    assert (policy.workers, policy.eval_chunk, policy.precision, policy.fused_kernels) == (3, 77, "fp32", False)
    explicit = make_policy(CUDA, workers=1, eval_chunk=5, precision="bf16", fused_kernels=True)
    assert (explicit.workers, explicit.eval_chunk, explicit.precision, explicit.fused_kernels) == (1, 5, "bf16", True)


@pytest.mark.parametrize("name, value", [("MIA_WORKERS", "-2"), ("MIA_EVAL_CHUNK", "many"), ("MIA_PRECISION", "fp8"),
                                         ("MIA_FUSED_KERNELS", "maybe")])
def test_bad_environment_values_are_one_line(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(MiaError, match=f"{name}={value!r}: expected"):
        make_policy(CPU)


def test_code_follows_the_active_policy():
    assert current(CPU).precision == "fp32" and not torch.is_autocast_enabled("cpu")
    with make_policy(CPU, precision="bf16", eval_chunk=3).active():
        assert current(CPU).eval_chunk == 3
        with autocast(CPU):
            assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16
    assert current(CPU).eval_chunk == 256


def test_training_prints_the_policy_once(tiny_synth, tmp_path, monkeypatch):
    monkeypatch.setenv("MIA_EVAL_CHUNK", "7")
    result = run("train", "--data", tiny_synth, "--out", tmp_path / "run", "--epochs", 1, *TINY)
    assert result.exit_code == 0, result.output
    assert result.output.count("policy: device cpu, fp32, 0 data workers, scoring 7 queries at a time") == 1
