"""Step training and ``mia ablate`` through the CLI on a tiny synthpedes set."""

import importlib
import json
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from mia.cli.main import cli
from test_cli_train import TINY, history, one_line_error, run


def experiment_script(name: str):
    """A script of docs/experiments, imported as its own folder's scripts import each other."""
    folder = Path(__file__).parents[1] / "docs" / "experiments"
    sys.path.insert(0, str(folder))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(folder))


def test_step_training_switches_alignments_at_stage_boundaries(tiny_synth, tmp_path):
    out = tmp_path / "staged"
    result = run("train", "--data", tiny_synth, "--out", out, *TINY, "--stages", "global:1,part:1,fine:1",
                 "--weights", "global=1,part=0.5,fine=0.5")
    assert result.exit_code == 0, result.output
    assert [r["alignments"] for r in history(out)] == [["global"], ["global", "part"], ["global", "part", "fine"]]
    assert set(history(out)[0]) >= {"global/rank"} and "part/rank" not in history(out)[0]
    assert {"part/rank", "part/id", "fine/rank"} <= set(history(out)[2])
    best = torch.load(out / "best.pt", weights_only=True)
    assert best["best"]["epoch"] == 3  # chosen among epochs that train all three
    assert best["active"] == ["global", "part", "fine"]
    assert best["spec"]["weights"] == {"global": 1.0, "part": 0.5, "fine": 0.5}
    assert best["spec"]["chunker"] == "rules"
    evaluated = run("eval", "--checkpoint", out / "best.pt", "--json", "--workers", 0, "--split", "val")
    report = json.loads(evaluated.output.strip().splitlines()[-1])
    assert report["alignments"] == ["global", "part", "fine"]
    low, high = report["intervals"]["R1"]  # both from the bootstrap over people: a 95% interval spans about 4 SE
    assert report["R1_se"] == pytest.approx((high - low) / 3.92, rel=0.5, abs=1e-9)


def test_ablate_writes_reports_and_resumes(tiny_synth, tmp_path):
    out = tmp_path / "ablation"
    args = ["ablate", "--data", tiny_synth, "--align", "global", "--align", "global,fine", "--seeds", "0,1",
            "--epochs", "1", "--out", out, *TINY]
    first = run(*args)
    assert first.exit_code == 0, first.output
    state = json.loads((out / "ablation.json").read_text())
    assert [(r["combination"], r["seed"]) for r in state["runs"]] == \
        [("global", 0), ("global", 1), ("global+fine", 0), ("global+fine", 1)]
    assert all(r["split"] == "test" and r["parameters"] > 0 and r["train_seconds"] > 0 for r in state["runs"])
    assert [sorted(r["components"]) for r in state["runs"]] == [[], [], ["fine", "global"], ["fine", "global"]]
    table = (out / "ablation.md").read_text()
    assert "| global | 2 |" in table and "| global+fine | 2 |" in table and "±" in table
    state_intervals = state["intervals"]
    versus = state_intervals["versus"]["global+fine"]["R1"]
    assert versus["low"] <= versus["estimate"] <= versus["high"] and "verdict" in versus
    assert set(state_intervals["combinations"]) == {"global", "global+fine"}
    assert "| minus global |" in table and "95% interval over people and seeds" in table
    assert "R1 of each alignment alone" in table and "global+fine | 0 |" in table
    assert (out / "ablation.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| global+fine | 2 |" in first.output

    # docs/experiments/reweigh.py: the same models scored with other fusion weights
    reweigh = experiment_script("reweigh")
    unchanged = reweigh.reweigh(out, "global+fine", {"fine": 1.0})
    assert all(d["estimate"] == 0 and d["verdict"] == "not resolved" for d in unchanged.values())
    fused = [r for r in state["runs"] if r["combination"] == "global+fine"]
    global_alone = reweigh.reweigh(out, "global+fine", {"fine": 0.0})["R1"]["estimate"]
    assert global_alone == pytest.approx(sum(r["components"]["global"] - r["R1"] for r in fused) / len(fused))

    # interrupted ablation: drop the last finished run and leave its run half-done
    state["runs"] = state["runs"][:2]
    (out / "ablation.json").write_text(json.dumps(state))
    second = run(*args)
    assert second.exit_code == 0, second.output
    assert "[1/4] global seed 0: done earlier, skipped" in second.output
    assert "[2/4] global seed 1: done earlier, skipped" in second.output
    assert "[3/4] global+fine seed 0: resuming" in second.output  # its run directory already had last.pt
    resumed = json.loads((out / "ablation.json").read_text())
    assert [(r["combination"], r["seed"]) for r in resumed["runs"]] == \
        [("global", 0), ("global", 1), ("global+fine", 0), ("global+fine", 1)]
    assert resumed["intervals"] == state_intervals  # computed from every run's saved per-query results

    # the paired comparison of two of its runs, through `mia compare`
    compared = run("compare", out / "runs" / "global+fine-seed0", out / "runs" / "global-seed0" / "best.pt",
                   "--json", "--workers", 0, "--device", "cpu")
    assert compared.exit_code == 0, compared.output
    result = json.loads(compared.output.strip().splitlines()[-1])
    fine_run = next(r for r in resumed["runs"] if r["combination"] == "global+fine" and r["seed"] == 0)
    assert result["models"][0]["R1"] == pytest.approx(fine_run["R1"])
    difference = result["differences"]["R1"]
    assert difference["low"] <= difference["estimate"] <= difference["high"]
    assert difference["verdict"] in ("better", "worse", "not resolved") and result["people"] == 6
    text = run("compare", out / "runs" / "global+fine-seed0", out / "runs" / "global+fine-seed0", "--workers", 0)
    assert "| R1 |" in text.output and "| +0.00 | [+0.00, +0.00] | not resolved |" in text.output

    # more seeds for a narrower interval: the runs done are reused, the new seed trained
    grown = run(*[("0,1,2" if a == "0,1" else a) for a in args])
    assert grown.exit_code == 0, grown.output
    assert "[1/6] global seed 0: done earlier, skipped" in grown.output
    assert "[3/6] global seed 2: training" in grown.output
    grown_state = json.loads((out / "ablation.json").read_text())
    assert len(grown_state["runs"]) == 6 and grown_state["settings"]["seeds"] == [0, 1, 2]
    assert "| global | 3 |" in (out / "ablation.md").read_text()
    epochs = args.index("--epochs") + 1
    other_budget = run(*args[:epochs], "2", *args[epochs + 1:])
    one_line_error(other_budget, "holds an ablation with other settings")
    other_baseline = run("ablate", "--data", tiny_synth, "--align", "global,fine", "--align", "global",
                         "--seeds", "0,1", "--epochs", "1", "--out", out, *TINY)
    one_line_error(other_baseline, "holds an ablation with other settings")


def test_ablate_refuses_other_settings_in_the_same_out(tiny_synth, tmp_path):
    out = tmp_path / "a"
    (out).mkdir()
    (out / "ablation.json").write_text(json.dumps({"settings": {"other": 1}, "runs": []}))
    result = CliRunner().invoke(cli, ["ablate", "--data", str(tiny_synth), "--align", "global", "--out", str(out), *TINY])
    assert result.exit_code == 1 and "holds an ablation with other settings" in result.output


def test_stopping_inside_an_early_stage_reports_how_to_continue(tiny_synth, tmp_path):
    out = tmp_path / "early"
    result = run("train", "--data", tiny_synth, "--out", out, *TINY, "--stages", "global:1,fine:1", "--stop-after", 1)
    assert result.exit_code == 0, result.output
    assert f"stopped after epoch 1/2: continue with 'mia train --out {out} --resume'" in result.output
    assert not (out / "best.pt").exists()  # best is chosen among epochs that train every alignment
    resumed = run("train", "--out", out, "--resume", "--workers", 0, "--quiet")
    assert resumed.exit_code == 0 and "best epoch 2" in resumed.output


SUBSETS = ["global", "part", "fine", "global,part", "global,fine", "part,fine", "global,part,fine"]


@pytest.mark.parametrize("align", SUBSETS)
def test_every_subset_trains_and_evaluates(tiny_synth, tmp_path, align):
    out = tmp_path / align.replace(",", "+")
    result = run("train", "--data", tiny_synth, "--out", out, *TINY, "--epochs", 1, "--align", align)
    assert result.exit_code == 0, result.output
    evaluated = run("eval", "--checkpoint", out / "best.pt", "--json", "--workers", 0, "--device", "cpu")
    metrics = json.loads(evaluated.output.strip().splitlines()[-1])
    assert metrics["alignments"] == align.split(",") and 0.0 <= metrics["R1"] <= 100.0


def test_missing_spacy_pipeline_is_a_one_line_error(tiny_synth, tmp_path):
    one_line_error(run("train", "--data", tiny_synth, "--out", tmp_path / "s", *TINY, "--align", "fine",
                       "--chunker", "spacy:no_such_pipeline"), "--chunker spacy:no_such_pipeline")


def test_compare_refuses_models_trained_on_different_data(tiny_synth, tmp_path):
    first = tmp_path / "first"
    train_result = run("train", "--data", tiny_synth, "--out", first, *TINY, "--epochs", 1)
    assert train_result.exit_code == 0, train_result.output
    payload = torch.load(first / "best.pt", weights_only=True)
    payload["config"]["data"] = "synthpedes"
    other = tmp_path / "other.pt"
    torch.save(payload, other)
    one_line_error(run("compare", first, other, "--workers", 0),
                   f"{first / 'best.pt'} was trained on '{tiny_synth}' and {other} on 'synthpedes'",
                   "pass --data to compare them on the same queries")


def test_a_restarted_stage_schedule_warms_up_and_decays_again_in_each_stage(tiny_synth, tmp_path):
    """--stage-schedule restart: the rate falls to its lowest at the end of each stage and
    starts again in the next (two stages of one epoch end at the same rate); the default
    decays once over the whole run."""
    lrs = {}
    for schedule in ("continue", "restart"):
        out = tmp_path / schedule
        result = run("train", "--data", tiny_synth, "--out", out, "--stages", "global:1,part:1", *TINY,
                     "--warmup-epochs", "0", "--stage-schedule", schedule)
        assert result.exit_code == 0, result.output
        lrs[schedule] = [json.loads(line)["lr"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert lrs["continue"][0] > 10 * lrs["continue"][1]
    assert lrs["restart"][0] == pytest.approx(lrs["restart"][1]) and lrs["restart"][0] < lrs["continue"][0] / 2


def test_a_grid_grows_by_variants_of_new_settings_and_over_fields_added_since():
    """Variants of a setting the saved grid kept fixed extend it when the saved value is the
    baseline's, and a grid saved before a field existed trained with that field's default."""
    from dataclasses import replace

    from mia.core.experiments.ablation import Variant, _extends, _settings
    from mia.core.settings.config import TrainConfig

    base = TrainConfig(epochs=5)
    saved = _settings(base, [Variant("mia", {}), Variant("all", {"ranking_negatives": "all"})], [0, 1])
    del saved["config"]["id_features"]  # a field that did not exist when the grid was saved
    grown = _settings(base, [Variant("mia", {}), Variant("all", {"ranking_negatives": "all"}),
                             Variant("final", {"text_encoder": "bigru-final"})], [0, 1, 2])
    assert _extends(grown, saved, base)
    assert not _extends(grown, saved, replace(base, text_encoder="transformer"))  # the baseline changed
    assert not _extends(_settings(replace(base, epochs=6), [Variant("mia", {})], [0]), saved, base)
    saved["config"]["id_features"] = "global"  # the grid ran with a non-default value
    assert not _extends(grown, saved, base)
