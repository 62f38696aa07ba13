"""The training step shared by the trainer and bench_train: losses read one step late,
fixed (untrimmed) batch shapes for compiled steps, and a compiled step computing what the
eager one does (compared on one step: Adam turns the last-bit differences of two equal
gradients into visibly different updates, so later steps drift apart by design)."""

import copy

import numpy as np
import pytest
import torch

from mia.core.modeling.alignment import LossSettings
from mia.core.runtime.policy import prepare_images
from mia.core.data.loaders import ImageReader, PairDataset, build_text_table, person_labels
from mia.core.modeling.model import ModelSpec, create_model
from mia.core.data.records import load_dataset
from mia.core.training.step import TrainingStep
from mia.core.data.text_arrays import TextSettings
from mia.core.data.tokenizer import Vocabulary

from test_cli_train import TINY, run

WEIGHTS = {"global": 1.0, "part": 1.0, "fine": 1.0}
SETTINGS = LossSettings(margin=0.2, id_weight=1.0)


def pairs(data, fixed_shapes):
    records = load_dataset(str(data)).split("train")
    vocab = Vocabulary.build(c for r in records for c in r.captions)
    table = build_text_table(records, vocab, TextSettings(), "rules")
    labels, classes = person_labels(records)
    return PairDataset(records, table, labels, ImageReader((64, 32), seed=0, train=True), fixed_shapes), len(vocab), classes


def batches(dataset, count, size=8):
    order = np.random.default_rng(0).permutation(len(dataset))
    return [dataset.collate([dataset[(0, int(n))] for n in order[i * size:(i + 1) * size]]) for i in range(count)]


def tiny_model(vocab, classes):
    torch.manual_seed(0)
    spec = ModelSpec(image_encoder="resnet18", alignments=list(WEIGHTS), embed_dim=32, image_size=(64, 32),
                     vocab_size=vocab, num_classes=classes)
    return create_model(spec).train()


def make_step(model):
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    return TrainingStep(model, optimizer, torch.device("cpu"))


def test_untrimmed_batches_give_the_losses_of_trimmed_ones(tiny_synth):
    trimmed, vocab, classes = pairs(tiny_synth, fixed_shapes=False)
    fixed, _, _ = pairs(tiny_synth, fixed_shapes=True)
    short, full = batches(trimmed, 1)[0], batches(fixed, 1)[0]
    assert full[1].shape[1] == fixed.table.tokens.shape[1] > short[1].shape[1]  # padding kept
    assert full[2].shape[1:] == fixed.table.phrases.shape[1:]
    model = tiny_model(vocab, classes)
    losses = [model(short[0].float(), *short[1:], WEIGHTS, SETTINGS), model(full[0].float(), *full[1:], WEIGHTS, SETTINGS)]
    assert losses[0].keys() == losses[1].keys()
    for name in losses[0]:
        assert torch.allclose(losses[0][name], losses[1][name], atol=1e-5), name


def test_losses_come_back_one_step_late(tiny_synth):
    dataset, vocab, classes = pairs(tiny_synth, fixed_shapes=False)
    first, second = batches(dataset, 2)
    model = tiny_model(vocab, classes)
    before = copy.deepcopy(model)
    step = make_step(model)
    assert step(*first, WEIGHTS) is None
    reported = step(*second, WEIGHTS)
    # the losses of the first batch, before any update
    reference = before(prepare_images(first[0], torch.device("cpu")), *first[1:], WEIGHTS, SETTINGS)
    assert reported.keys() == {"loss", *reference}
    for name, value in reference.items():
        assert reported[name] == pytest.approx(value.item(), rel=1e-5), name
    assert reported["loss"] == pytest.approx(sum(v.item() for v in reference.values()), rel=1e-5)
    last = step.flush()
    assert last is not None and last != reported and step.flush() is None


def test_a_compiled_step_computes_the_eager_losses_and_gradients(tiny_synth):
    """The step captured by Dynamo as ``mia train --compile`` captures it; compiled by
    Inductor on a GPU, and without one run through Dynamo's ``eager`` backend, which skips
    Inductor's C++ code generation (most of a minute on two cores)."""
    dataset, vocab, classes = pairs(tiny_synth, fixed_shapes=True)
    batch = batches(dataset, 1)[0]
    backend = "inductor" if torch.cuda.is_available() else "eager"
    losses, gradients = [], []
    for compiled in (False, True):
        model = tiny_model(vocab, classes)
        step = make_step(torch.compile(model, backend=backend) if compiled else model)
        assert step(*batch, WEIGHTS) is None
        losses.append(step.flush())
        gradients.append([p.grad for p in model.parameters()])
    for name in losses[0]:
        assert losses[1][name] == pytest.approx(losses[0][name], rel=1e-4), name
    for eager, compiled in zip(*gradients):
        assert (compiled - eager).norm() <= 1e-3 * eager.norm() + 1e-5  # + rounding of zero gradients


def test_a_diverging_run_stops_with_a_one_line_error(tiny_synth, tmp_path):
    options = list(TINY)
    options[options.index("--lr") + 1] = "1e30"
    result = run("train", "--data", tiny_synth, "--out", tmp_path / "run", *options, "--epochs", 1)
    assert result.exit_code == 1
    assert "training diverged" in result.output and "--lr" in result.output and "Traceback" not in result.output


def test_train_compile_option_compiles_the_step_and_keeps_batch_shapes_fixed(tiny_synth, tmp_path, monkeypatch):
    """``mia train --compile MODE``: the training forward goes through torch.compile with
    that mode (a pass-through spy here; the real compilation is tested above) and every
    batch has one shape, so a CUDA graph recorded once is replayed for all."""
    seen = {"modes": [], "shapes": set()}

    def spy(module, mode=None):
        seen["modes"].append(mode)

        def forward(images, tokens, phrases, *rest):
            seen["shapes"].add((tuple(tokens.shape), tuple(phrases.shape)))
            return module(images, tokens, phrases, *rest)
        return forward

    monkeypatch.setattr(torch, "compile", spy)
    result = run("train", "--data", tiny_synth, "--out", tmp_path / "run", *TINY, "--epochs", 2,
                 "--align", "global,part,fine", "--compile", "reduce-overhead")
    assert result.exit_code == 0, result.output
    assert seen["modes"] == ["reduce-overhead"] and len(seen["shapes"]) == 1
    resumed = run("train", "--data", tiny_synth, "--out", tmp_path / "run", *TINY, "--epochs", 2,
                  "--align", "global,part,fine", "--resume")  # compiling or not never blocks a resume
    assert resumed.exit_code == 0, resumed.output


def test_an_unknown_compile_mode_is_a_one_line_error():
    from mia.core.settings.config import TrainConfig
    from mia.core.base.errors import MiaError

    with pytest.raises(MiaError, match=r"^--compile: expected one of default, reduce-overhead"):
        TrainConfig(compile="fast").validate()
