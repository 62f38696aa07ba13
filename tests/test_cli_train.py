"""Train -> checkpoint -> resume -> eval through the real CLI, on a tiny synthpedes set."""

import json
from pathlib import Path

import pytest
import numpy as np
import torch
from click.testing import CliRunner

from mia.cli.main import cli

TINY = ["--image-encoder", "resnet18", "--image-size", "64x32", "--embed-dim", "32", "--batch-size", "16",
        "--min-word-freq", "1", "--workers", "0", "--device", "cpu", "--quiet", "--lr", "3e-3"]


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def train(data, out, *extra):
    result = run("train", "--data", data, "--out", out, "--epochs", 2, *TINY, *extra)
    assert result.exit_code == 0, result.output
    return result


def history(out):
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def without_timing(records):
    drop = {"train_seconds", "data_seconds", "eval_seconds", "images_per_second"}
    return [{k: v for k, v in r.items() if k not in drop} for r in records]


@pytest.fixture(scope="module")
def trained(tiny_synth, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "full"
    result = train(tiny_synth, out)
    return out, result


def test_train_writes_checkpoints_metrics_and_table(trained):
    out, result = trained
    assert "| global |" in result.output and "best epoch" in result.output
    records = history(out)
    assert [r["epoch"] for r in records] == [1, 2]
    assert {"R1", "R5", "R10", "mAP", "mINP", "loss", "global/rank", "global/id", "lr"} <= set(records[0])
    assert all(0 < r["data_seconds"] < r["train_seconds"] for r in records)  # the loader's share of the epoch
    checkpoint = torch.load(out / "last.pt", weights_only=True)
    assert checkpoint["epoch"] == 2 and checkpoint["spec"]["alignments"] == ["global"]
    assert checkpoint["tokenizer"]["kind"] == "words" and checkpoint["tokenizer"]["vocabulary"][:2] == ["<pad>", "<unk>"]
    assert "optimizer" in checkpoint
    assert checkpoint["config"]["image_size"] == [64, 32]
    assert "optimizer" not in torch.load(out / "best.pt", weights_only=True)


def test_resume_continues_exactly(trained, tiny_synth, tmp_path):
    full, _ = trained
    out = tmp_path / "split"
    train(tiny_synth, out, "--stop-after", 1)
    assert len(history(out)) == 1
    result = run("train", "--out", out, "--resume", "--workers", 0, "--quiet")
    assert result.exit_code == 0, result.output
    assert without_timing(history(out)) == without_timing(history(full))


def test_eval_reproduces_the_validation_numbers(trained):
    out, _ = trained
    best = torch.load(out / "best.pt", weights_only=True)["best"]
    result = run("eval", "--checkpoint", out / "best.pt", "--split", "val", "--json", "--device", "cpu", "--workers", 0)
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.output.strip().splitlines()[-1])
    for key in ("R1", "R5", "R10", "mAP", "mINP"):
        assert metrics[key] == pytest.approx(best["metrics"][key], abs=1e-6)


def test_eval_prints_a_table_for_test(trained):
    out, _ = trained
    result = run("eval", "--checkpoint", out / "best.pt", "--workers", 0)
    assert result.exit_code == 0, result.output
    assert "test:" in result.output and "| global |" in result.output
    # every stage of the evaluation shows its progress, not only the images
    for stage in ("encode images", "encode captions", "score"):
        assert f"\n{stage} " in "\n" + result.stderr, result.stderr


def one_line_error(result, *fragments):
    assert result.exit_code != 0
    lines = [line for line in result.output.strip().splitlines() if line]
    assert len(lines) == 1 and lines[0].startswith("Error:"), result.output
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0]


def test_bad_inputs_give_one_line_errors(trained, tiny_synth, tmp_path):
    out, _ = trained
    one_line_error(run("train", "--data", tiny_synth, "--out", out, *TINY), "already holds a run", "--resume")
    one_line_error(run("train", "--out", tmp_path / "none", "--resume"), "checkpoint", "file not found")
    one_line_error(run("train", "--data", tmp_path / "missing", "--out", tmp_path / "a", *TINY), "neither a data set name")
    one_line_error(run("train", "--data", tiny_synth, "--out", tmp_path / "b", *TINY, "--image-encoder", "vgg"),
                   "unknown image-encoder 'vgg'", "resnet18")
    one_line_error(run("train", "--data", tiny_synth, "--out", tmp_path / "c", *TINY, "--align", "global,nope"),
                   "unknown alignment 'nope'")
    one_line_error(run("train", "--data", tiny_synth, "--out", tmp_path / "d", *TINY, "--batch-size", "1"), "--batch-size")
    one_line_error(run("train", "--data", tiny_synth, "--out", tmp_path / "e", *TINY, "--image-weights", tmp_path / "w.pt"),
                   "--image-weights", "file not found")
    one_line_error(run("train", "--out", out, "--resume", "--epochs", "5"), "options differ", "epochs")
    one_line_error(run("eval", "--checkpoint", tmp_path / "nope.pt"), "file not found")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    one_line_error(run("eval", "--checkpoint", tmp_path / "junk.pt"), "junk.pt", "not a PyTorch weights file")
    one_line_error(run("eval", "--checkpoint", out / "best.pt", "--data", tmp_path), "no data set recognises")


def test_image_size_option_is_validated(tiny_synth, tmp_path):
    result = run("train", "--data", tiny_synth, "--out", tmp_path / "x", "--image-size", "big")
    assert result.exit_code == 2 and "expected HEIGHTxWIDTH" in result.output


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA error")
def test_cuda_without_cuda_is_a_clear_error(tiny_synth, tmp_path):
    one_line_error(run("train", "--data", tiny_synth, "--out", tmp_path / "x", *TINY[:-5], "--device", "cuda"),
                   "CUDA is not available")


def test_eval_writes_a_results_page(trained, tmp_path):
    out, _ = trained
    page = tmp_path / "report.html"
    result = run("eval", "--checkpoint", out / "best.pt", "--workers", 0, "--html", page)
    assert result.exit_code == 0, result.output
    text = page.read_text()
    queries = text.count('class="query"')
    assert "mINP" in text and text.count('class="tile') == 10 * queries and queries == 36  # 6 test ids x 3 images x 2
    failures = tmp_path / "failures.html"
    run("eval", "--checkpoint", out / "best.pt", "--workers", 0, "--html", failures, "--failures-only")
    metrics = json.loads(run("eval", "--checkpoint", out / "best.pt", "--workers", 0, "--json").output.strip().splitlines()[-1])
    shown = failures.read_text().count('class="query"')
    assert shown == round(queries * (1 - metrics["R1"] / 100))
    run("eval", "--checkpoint", out / "best.pt", "--workers", 0, "--html", page, "--html-queries", 5)
    assert page.read_text().count('class="query"') == 5 and "the first 5 queries of 36 queries" in page.read_text()


def test_checkpoint_from_an_incompatible_model_is_a_clear_error(trained, tmp_path):
    out, _ = trained
    payload = torch.load(out / "best.pt", weights_only=True)
    payload["model"]["alignments.global.retired_layer"] = torch.zeros(1)
    torch.save(payload, tmp_path / "old.pt")
    one_line_error(run("eval", "--checkpoint", tmp_path / "old.pt"), "old.pt: its weights do not fit",
                   "unexpected alignments.global.retired_layer")


def test_eval_weights_override_the_checkpoints_fusion(tiny_synth, tmp_path):
    from mia.core.evaluation.evaluate import evaluate_checkpoint

    out = tmp_path / "global+fine"
    train(tiny_synth, out, "--align", "global,fine")
    alone = evaluate_checkpoint(out / "best.pt", split="val", device="cpu", workers=0, show_progress=False,
                                components=True).components["global"]
    result = run("eval", "--checkpoint", out / "best.pt", "--split", "val", "--json", "--device", "cpu",
                 "--workers", 0, "--weights", "fine=0")
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.output.strip().splitlines()[-1])
    for key in ("R1", "R5", "mAP"):  # fine weighted 0: the fusion is the global alignment alone
        assert metrics[key] == pytest.approx(alone[key], abs=1e-6)
    one_line_error(run("eval", "--checkpoint", out / "best.pt", "--weights", "part=1", "--workers", 0),
                   "--weights names 'part', which is not trained (--align global,fine)")


def test_the_re_implementations_variants_train_and_are_recorded(tiny_synth, tmp_path):
    """The options that give the public MIA re-implementation's choices (docs/method.md)
    train end to end; the model keeps them and the run's config file records them."""
    out = tmp_path / "paper"
    result = train(tiny_synth, out, "--align", "global,part", "--epochs", "1", "--text-encoder", "bigru-final",
                   "--rga-temperature", "fixed", "--id-features", "global", "--ranking-negatives", "all",
                   "--optimizer", "adam", "--augment", "flip", "--rga-mlp", "parts",
                   "--id-classifier", "linear", "--image-heads", "linear")
    assert result.exit_code == 0, result.output
    assert "global/id" in history(out)[0] and "part/id" not in history(out)[0]
    spec = torch.load(out / "best.pt", weights_only=True)["spec"]
    assert spec["text_encoder"] == "bigru-final" and spec["rga_temperature"] == "fixed" and spec["rga_mlp"] == "parts"
    weights = torch.load(out / "best.pt", weights_only=True)["model"]
    assert any(key.startswith("alignments.part.stripe_relation.") for key in weights) and "classifier.bias" in weights
    assert not any(key.startswith(("image_encoder.global_head.1.", "image_encoder.part_norm.")) for key in weights)
    config = (out / "config.toml").read_text()
    assert 'id_features = "global"' in config and 'rga_temperature = "fixed"' in config
    assert 'optimizer = "adam"' in config and 'augment = "flip"' in config and 'rga_mlp = "parts"' in config
    optimizer = torch.load(out / "last.pt", weights_only=False)["optimizer"]["param_groups"][0]
    assert "decoupled_weight_decay" not in optimizer or not optimizer["decoupled_weight_decay"]


def test_the_optimizer_and_the_augmentation_options_do_what_they_say():
    """--optimizer adam is Adam (the L2 term in the gradient), adamw AdamW; --augment flip
    only flips, so a flipped image is the resized one mirrored, never shifted."""
    import random

    from PIL import Image

    from mia.core.data.preprocess import augment
    from mia.core.modeling.model import ModelSpec, create_model
    from mia.core.settings.config import TrainConfig
    from mia.core.training.train import _optimizer

    model = create_model(ModelSpec(image_encoder="resnet18", alignments=["global"], vocab_size=10, num_classes=2))
    assert type(_optimizer(model, TrainConfig(optimizer="adam"))) is torch.optim.Adam
    assert type(_optimizer(model, TrainConfig())) is torch.optim.AdamW
    image = Image.effect_noise((40, 100), 64).convert("RGB")
    resized = np.asarray(image.resize((32, 64), Image.BILINEAR))
    for seed in range(8):
        flipped = np.asarray(augment(image, (64, 32), random.Random(seed), crop=False))
        assert np.array_equal(flipped, resized) or np.array_equal(flipped, resized[:, ::-1])
    cropped = [np.asarray(augment(image, (64, 32), random.Random(seed))) for seed in range(8)]
    assert not all(np.array_equal(c, resized) or np.array_equal(c, resized[:, ::-1]) for c in cropped)


def trunk_parameters(checkpoint: Path) -> dict[str, torch.Tensor]:
    """The image trunk's trained parameters in a checkpoint (its batch-norm statistics are
    buffers, not parameters: they follow the data even while the trunk is frozen)."""
    model = torch.load(checkpoint, weights_only=False)["model"]
    return {k: v for k, v in model.items() if k.startswith("image_encoder.trunk.")
            and not k.endswith(("running_mean", "running_var", "num_batches_tracked"))}


def test_a_frozen_trunk_and_identity_epochs_train_what_they_say(tiny_synth, tmp_path):
    """--frozen-trunk-epochs 2 leaves the trunk's weights as they started for two epochs
    while its heads train, and thaws it in the third; --identity-epochs 1 trains the
    identity loss alone in the first, and that epoch is never chosen as best."""
    out = tmp_path / "frozen"
    options = ["--align", "global,part", "--epochs", "3", "--frozen-trunk-epochs", "2", "--identity-epochs", "1",
               "--stop-after", "1"]
    train(tiny_synth, out, *options)
    first = trunk_parameters(out / "last.pt")
    heads = torch.load(out / "last.pt", weights_only=False)["model"]["image_encoder.global_head.0.weight"]
    train(tiny_synth, out, *options, "--resume")
    second = trunk_parameters(out / "last.pt")
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert not torch.equal(heads, torch.load(out / "last.pt", weights_only=False)["model"]["image_encoder.global_head.0.weight"])
    train(tiny_synth, out, *options, "--resume")
    third = trunk_parameters(out / "last.pt")
    assert any(not torch.equal(second[k], third[k]) for k in second)
    epochs = history(out)
    assert not any(k.endswith("/rank") for k in epochs[0]) and {"global/id", "part/id"} <= set(epochs[0])
    assert "global/rank" in epochs[1] and "part/rank" in epochs[1]
    assert torch.load(out / "last.pt", weights_only=False)["best"]["epoch"] >= 2
    config = (out / "config.toml").read_text()
    assert "frozen_trunk_epochs = 2" in config and "identity_epochs = 1" in config


def test_frozen_trunk_and_identity_epochs_are_checked(tiny_synth, tmp_path):
    one_line_error(run("train", "--data", tiny_synth, "--out", tmp_path / "a", *TINY, "--epochs", "2",
                       "--frozen-trunk-epochs", "3"), "--frozen-trunk-epochs", "at most --epochs (2)")
    one_line_error(run("train", "--data", tiny_synth, "--out", tmp_path / "b", *TINY, "--epochs", "2",
                       "--identity-epochs", "2"), "--identity-epochs", "fewer than --epochs (2)")
    one_line_error(run("train", "--data", tiny_synth, "--out", tmp_path / "c", *TINY, "--epochs", "2",
                       "--identity-epochs", "1", "--id-weight", "0"), "--identity-epochs", "--id-weight is 0")
    one_line_error(run("train", "--data", tiny_synth, "--out", tmp_path / "d", *TINY, "--epochs", "2",
                       "--align", "fine", "--identity-epochs", "1"), "--identity-epochs", "nothing to classify")
    assert not (tmp_path / "d").exists()
