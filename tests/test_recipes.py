"""Recipes, a config file per run, reruns from it, the default recipe of a named benchmark,
a val split carved where a data set has none, published split sizes, --dry-run and
TensorBoard curves, through the real CLI on tiny data."""

import json
import shutil

import pytest

from mia.core.settings.run_config import FORMAT
from test_cli_train import TINY, history, run, without_timing

TINY_RECIPE = f"""# a recipe small enough for a test
format = "{FORMAT}"
description = "a tiny global+fine model"

[train]
align = ["global", "fine"]   # the test's choice
epochs = 2                   # overridden on the command line in the test
embed_dim = 32
"""


def tiny_options(*skip: str) -> list:
    """TINY without the options named in ``skip`` (and their values)."""
    options, pairs = [], iter(TINY)
    for option in pairs:
        value = None if option == "--quiet" else next(pairs)
        if option not in skip:
            options += [option] if value is None else [option, value]
    return options


def real_format_copy(tiny_synth, root, name="cuhk-pedes", drop_person=None):
    """The tiny set as a CUHK-PEDES (or, without its val split, ICFG-PEDES) download."""
    entries = json.loads((tiny_synth / "reid_raw.json").read_text())
    if drop_person is not None:
        entries = [e for e in entries if e["id"] != drop_person]
    shutil.copytree(tiny_synth / "imgs", root / "imgs")
    if name == "icfg-pedes":
        entries = [{**e, "split": "train" if e["split"] == "val" else e["split"]} for e in entries]
        (root / "ICFG-PEDES.json").write_text(json.dumps(entries))
    else:
        (root / "reid_raw.json").write_text(json.dumps(entries))
    return root


def test_recipes_are_listed_and_shown():
    listed = run("recipes")
    assert listed.exit_code == 0
    names = [line.split()[0] for line in listed.output.splitlines()]
    assert {"demo", "mia-cuhk-pedes", "mia-icfg-pedes", "mia-rstpreid"} <= set(names) and len(names) >= 4
    assert "[default for --data cuhk-pedes]" in listed.output
    shown = run("recipes", "show", "mia-cuhk-pedes")
    assert shown.exit_code == 0 and "lr = 2e-4" in shown.output and "src/configs/args.py" in shown.output


def test_every_shipped_recipe_is_complete_and_says_where_each_value_comes_from():
    from mia.core.registry.plugins import get_registry
    from mia.core.settings.run_config import load_recipe, resolve
    from mia.core.settings.stages import canonical_alignments, plan_stages

    for name in get_registry("recipe").names():
        config, _ = resolve([load_recipe(name)], {})
        config.validate()
        plan_stages(config.stages, canonical_alignments(config.align), config.epochs)  # stages fill the epochs
        text = load_recipe(name).text
        train = text[text.index("[train]"):].splitlines()[1:]
        for line in train:
            if line.strip() and not line.startswith("#"):
                assert "#" in line and line.split("#", 1)[1].strip(), f"{name}: no source for {line!r}"


def test_a_recipe_with_an_override_trains_and_says_where_each_value_came_from(tiny_synth, tmp_path):
    """Also: --tensorboard writes the epoch's curves, the same numbers as metrics.jsonl."""
    recipe = tmp_path / "tiny.toml"
    recipe.write_text(TINY_RECIPE)
    out = tmp_path / "run"
    result = run("train", "--recipe", recipe, "--data", tiny_synth, "--out", out, "--epochs", 1, "--tensorboard",
                 *tiny_options("--embed-dim"))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    from_recipe = next(line for line in lines if line.startswith(f"config from recipe {recipe}:"))
    from_command_line = next(line for line in lines if line.startswith("config from command line:"))
    defaults = next(line for line in lines if line.startswith("config from defaults:"))
    assert "align=global,fine" in from_recipe and "embed_dim=32" in from_recipe and "epochs" not in from_recipe
    assert "epochs=1" in from_command_line and "seed=0" in defaults
    assert len(history(out)) == 1
    config = (out / "config.toml").read_text()
    assert "epochs = 1  # command line" in config and 'align = ["global", "fine"]  # recipe' in config
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    assert {"train/loss", "val/R1", "val/mAP"} <= set(events.Tags()["scalars"])
    assert [(e.step, round(e.value, 4)) for e in events.Scalars("val/R1")] == [(1, round(history(out)[0]["R1"], 4))]


def test_a_run_is_trained_again_from_its_config_file_with_the_same_numbers(tiny_synth, tmp_path):
    first, again = tmp_path / "a", tmp_path / "b"
    trained = run("train", "--data", tiny_synth, "--out", first, "--epochs", 2, "--align", "global,part", *TINY)
    assert trained.exit_code == 0, trained.output
    # a folder in CUHK-PEDES's format (as mia data synth writes one) is not CUHK-PEDES: no recipe, no published sizes
    assert "recipe" not in trained.output and "published" not in trained.output
    rerun = run("train", "--config", first / "config.toml", "--out", again)
    assert rerun.exit_code == 0, rerun.output
    assert f"config from config {first / 'config.toml'}:" in rerun.output
    assert without_timing(history(again)) == without_timing(history(first))


def test_a_named_benchmark_alone_gets_its_paper_recipe(tiny_synth, tmp_path, monkeypatch):
    """What a researcher who types `mia train --data cuhk-pedes:DIR` gets: MIA as the
    recipe says, announced on the first line (the training itself is replaced: the
    recipe is ResNet-50 at 384x128 for 40 epochs)."""
    import mia.cli.train_cmd as train_cmd
    from mia.core.settings.run_config import load_recipe

    seen = {}
    monkeypatch.setattr(train_cmd, "train", lambda config, **kwargs: seen.setdefault("config", config) and None)
    root = real_format_copy(tiny_synth, tmp_path / "CUHK-PEDES")
    result = run("train", "--data", f"cuhk-pedes:{root}")
    assert result.output.splitlines()[0].startswith("recipe mia-cuhk-pedes: ")
    assert "--recipe none" in result.output.splitlines()[0]
    recipe = load_recipe("mia-cuhk-pedes").values
    config = seen["config"].to_dict()
    assert {key: config[key] for key in recipe if key != "data"} == {
        key: list(v) if isinstance(v, tuple) else v for key, v in recipe.items() if key != "data"}
    assert config["data"] == f"cuhk-pedes:{root}" and config["align"] == ["global", "part", "fine"]


def test_a_data_set_without_val_selects_on_a_carved_val_split(tiny_synth, tmp_path):
    root = real_format_copy(tiny_synth, tmp_path / "ICFG", "icfg-pedes")
    out = tmp_path / "run"
    result = run("train", "--data", f"icfg-pedes:{root}", "--recipe", "none", "--out", out, "--epochs", 1,
                 "--val-share", "0.25", *TINY)
    assert result.exit_code == 0, result.output
    carved = next(line for line in result.output.splitlines() if "carved" in line)
    assert "no val split: carved one from train by identity (4 of 18 people" in carved
    assert history(out)[0]["split"] == "val" and "best epoch 1 on val" in result.output
    assert "val_share = 0.25  # command line" in (out / "config.toml").read_text()


def test_the_carved_split_is_the_same_people_every_time_and_never_in_train(tiny_synth, tmp_path):
    from mia.core.data.records import training_dataset

    root = real_format_copy(tiny_synth, tmp_path / "ICFG", "icfg-pedes")
    first, again = (training_dataset(f"icfg-pedes:{root}", 0.25, 3, False) for _ in range(2))
    val = {r.person_id for r in first.split("val")}
    assert val == {r.person_id for r in again.split("val")} and len(val) == 4
    assert not val & {r.person_id for r in first.split("train")}
    assert val != {r.person_id for r in training_dataset(f"icfg-pedes:{root}", 0.25, 4, False).split("val")}


def test_selecting_on_test_must_be_asked_for_and_is_labelled(tiny_synth, tmp_path):
    root = real_format_copy(tiny_synth, tmp_path / "ICFG", "icfg-pedes")
    out = tmp_path / "run"
    result = run("train", "--data", f"icfg-pedes:{root}", "--recipe", "none", "--out", out, "--epochs", 1,
                 "--select-on-test", *TINY)
    assert result.exit_code == 0, result.output
    assert "the epoch is selected on test (--select-on-test)" in result.output
    assert "best epoch 1 on test" in result.output and "selected on test" in result.output.split("best epoch")[1]
    evaluated = run("eval", "--checkpoint", out / "best.pt", "--device", "cpu")
    assert evaluated.exit_code == 0 and "selected on test" in evaluated.output


def test_a_download_missing_a_person_is_reported_split_by_split(tiny_synth, tmp_path, monkeypatch):
    """The published sizes are the tiny set's own, so exactly the split that lost a person differs."""
    from mia.core.registry.plugins import get_component
    from mia.core.data.records import SplitSize, load_dataset

    whole = load_dataset(str(tiny_synth)).sizes()
    monkeypatch.setattr(get_component("dataset", "cuhk-pedes").factory, "published", whole)
    complete = real_format_copy(tiny_synth, tmp_path / "complete")
    assert not load_dataset(f"cuhk-pedes:{complete}").size_differences()
    person = json.loads((tiny_synth / "reid_raw.json").read_text())[-1]["id"]
    partial = real_format_copy(tiny_synth, tmp_path / "partial", drop_person=person)
    info = run("data", "info", f"cuhk-pedes:{partial}")
    differences = [line for line in info.output.splitlines() if "published" in line]
    test = whole["test"]
    assert differences == [f"note: cuhk-pedes test holds {SplitSize(test.identities - 1, test.images - 3, test.captions - 6).describe()}; "
                           f"published: {test.describe()}"]


def test_a_dry_run_projects_time_and_memory_and_writes_nothing(tiny_synth, tmp_path):
    out = tmp_path / "run"
    result = run("train", "--data", tiny_synth, "--out", out, "--epochs", 3, "--dry-run", *TINY)
    assert result.exit_code == 0, result.output
    assert "projected epoch:" in result.output and "run of 3 epochs:" in result.output
    assert "peak memory" in result.output and "GiB" in result.output and "[train]" in result.output
    assert not out.exists()


def test_an_ablation_records_its_grid_and_runs_again_from_it(tiny_synth, tmp_path):
    first = tmp_path / "ablation"
    done = run("ablate", "--data", tiny_synth, "--out", first, "--epochs", 1, "--align", "global",
               "--align", "global,fine", "--seeds", "3", *TINY)
    assert done.exit_code == 0, done.output
    grid = (first / "ablation.toml").read_text()
    assert 'align = [["global"], ["global", "fine"]]' in grid and "seeds = [3]" in grid
    again = run("ablate", "--config", first / "ablation.toml", "--out", tmp_path / "again")
    assert again.exit_code == 0, again.output

    def results(folder):
        return [{k: v for k, v in r.items() if k not in ("train_seconds", "outcomes")}
                for r in json.loads((folder / "ablation.json").read_text())["runs"]]

    assert results(first) == results(tmp_path / "again")


@pytest.mark.parametrize("content, fragment", [
    ("lrr = 1", "[train] unknown key 'lrr'; did you mean 'lr'?"),
    ('lr = "fast"', "[train] field 'lr' must be float, got 'fast'"),
    ("lr = -1", "[train] lr: expected a finite number > 0, got -1.0"),
    ("epochs = 0", "[train] epochs: expected an integer >= 1, got 0"),
    ("val_share = 1.5", "[train] val_share: expected a finite number > 0 and <= 0.9, got 1.5"),
    ("lr = ", "not valid TOML"),
])
def test_a_bad_recipe_file_is_one_line_naming_the_file_and_key(tmp_path, content, fragment):
    recipe = tmp_path / "bad.toml"
    recipe.write_text(f'format = "{FORMAT}"\n[train]\n{content}\n')
    result = invoke("train", "--recipe", recipe, "--out", tmp_path / "run")
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and f"{recipe}: " in result.output and fragment in result.output


def test_recipe_and_config_refusals_are_one_line(tmp_path):
    unknown = invoke("train", "--recipe", "mia-cuhk-pedez")
    assert unknown.exit_code == 1 and "did you mean 'mia-cuhk-pedes'?" in unknown.output
    assert "known recipes: demo, mia-clip-cuhk-pedes, mia-cuhk-pedes, mia-icfg-pedes, mia-rstpreid" in unknown.output
    newer = tmp_path / "config.toml"
    newer.write_text('format = "mia-config/9"\n[train]\nepochs = 1\n')
    refused = invoke("train", "--config", newer)
    assert refused.exit_code == 1 and "written as mia-config/9 by a newer mia" in refused.output
    assert refused.output.count("\n") == 1


def invoke(*args):
    """The CLI as a user meets it: errors go through its one-line handler."""
    from click.testing import CliRunner

    from mia.cli.main import cli

    return CliRunner().invoke(cli, [str(a) for a in args])


def test_none_overrides_a_recipes_pretrained_weights(tmp_path):
    from mia.cli.options import command_line_values
    from mia.core.settings.run_config import load_recipe, resolve

    recipe = load_recipe("demo")
    assert recipe.values["image_weights"] == "IMAGENET1K_V1"
    config, origin = resolve([recipe], command_line_values({"image_weights": "none"}))
    assert config.image_weights is None and origin["image_weights"] != origin["image_encoder"]
    assert config.image_encoder == "mobilenet_v2"  # the rest of the recipe stands
