import pytest

from mia.core.base.errors import MiaError
from mia.core.settings.stages import Stage, active_at, parse_weight_items, plan_stages, resolve_weights


def test_no_stages_trains_everything_together():
    assert plan_stages(None, ["global", "part"], 5) == [Stage(("global", "part"), 5)]


def test_auto_splits_epochs_in_order_with_remainder_first():
    plan = plan_stages("auto", ["global", "part", "fine"], 7)
    assert plan == [Stage(("global",), 3), Stage(("global", "part"), 2), Stage(("global", "part", "fine"), 2)]
    assert [active_at(plan, e).alignments[-1] for e in range(7)] == ["global"] * 3 + ["part"] * 2 + ["fine"] * 2


def test_explicit_stages_resolve_aliases_and_must_match():
    plan = plan_stages("global-global:2,rga:1", ["global", "part"], 3)
    assert plan == [Stage(("global",), 2), Stage(("global", "part"), 1)]
    with pytest.raises(MiaError, match="add up to 3 epochs but --epochs is 4"):
        plan_stages("global:2,part:1", ["global", "part"], 4)
    with pytest.raises(MiaError, match="must be the --align list in order"):
        plan_stages("part:2,global:1", ["global", "part"], 3)
    with pytest.raises(MiaError, match="expected NAME:EPOCHS"):
        plan_stages("global:0", ["global"], 0)
    with pytest.raises(MiaError, match="cannot cover 3 stages"):
        plan_stages("auto", ["global", "part", "fine"], 2)


def test_weights_parse_and_resolve():
    assert parse_weight_items("global=1, part=0.5") == {"global": 1.0, "part": 0.5}
    assert resolve_weights({"global-part": 0.5}, ["global", "part"]) == {"part": 0.5}
    with pytest.raises(MiaError, match="expected NAME=NUMBER"):
        parse_weight_items("global")
    with pytest.raises(MiaError, match="not trained"):
        resolve_weights({"fine": 1.0}, ["global"])
