"""Tests of the built-in synthetic data set (format, truthfulness, determinism, atomicity)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from PIL import Image

from mia.plugins.datasets.synthpedes import IDENTITY_FILE, SynthConfig, generate_synthpedes
from mia.plugins.datasets.synthpedes.attributes import (
    ATTRIBUTE_FIELDS,
    BAG_TYPES,
    COLOURS,
    HAIR_COLOURS,
    HAT_TYPES,
    LOWER_TYPES,
    SHOE_TYPES,
    UPPER_TYPES,
    Identity,
)
from mia.plugins.datasets.synthpedes.captions import make_captions, tokenize
from mia.plugins.datasets.synthpedes.generate import build_identities

SMALL = SynthConfig(ids=12, images_per_id=2, seed=0)
ENTRY_FIELDS = {"split", "captions", "file_path", "processed_tokens", "id"}
COLOUR_WORDS = set(COLOURS) | set(HAIR_COLOURS)

#: caption noun token -> the attribute slot it names
NOUN_SLOTS = {
    **{t: "upper" for t in UPPER_TYPES},
    **{t: "lower" for t in LOWER_TYPES},
    **{t: "shoes" for t in SHOE_TYPES},
    **{t.split()[0]: "bag" for t in BAG_TYPES},  # "shoulder bag" is found by "shoulder"
    **{t: "hat" for t in HAT_TYPES},
    "hair": "hair",
}


@pytest.fixture(scope="module")
def small_set(tmp_path_factory) -> Path:
    return generate_synthpedes(tmp_path_factory.mktemp("synth") / "a", SMALL)


def _load(data_dir: Path) -> tuple[list[dict], dict[int, dict]]:
    entries = json.loads((data_dir / "reid_raw.json").read_text())
    identities = {int(k): v for k, v in json.loads((data_dir / IDENTITY_FILE).read_text()).items()}
    return entries, identities


def _identity(record: dict) -> Identity:
    return Identity(**{field: record[field] for field in ATTRIBUTE_FIELDS})


def _image_bytes(data_dir: Path) -> dict[str, bytes]:
    return {str(p.relative_to(data_dir)): p.read_bytes() for p in sorted((data_dir / "imgs").rglob("*.jpg"))}


# --------------------------------------------------------------------------- determinism


def test_same_seed_gives_identical_bytes_and_other_seed_differs(small_set, tmp_path):
    again = generate_synthpedes(tmp_path / "b", SMALL)
    assert (again / "reid_raw.json").read_bytes() == (small_set / "reid_raw.json").read_bytes()
    assert (again / IDENTITY_FILE).read_bytes() == (small_set / IDENTITY_FILE).read_bytes()
    assert _image_bytes(again) == _image_bytes(small_set)

    other = generate_synthpedes(tmp_path / "c", SynthConfig(ids=12, images_per_id=2, seed=1))
    assert (other / "reid_raw.json").read_bytes() != (small_set / "reid_raw.json").read_bytes()
    assert _image_bytes(other) != _image_bytes(small_set)


def test_image_does_not_depend_on_how_many_images_come_before(small_set, tmp_path):
    """Per-image RNGs: asking for more images per identity keeps the first ones identical."""
    more = generate_synthpedes(tmp_path / "more", SynthConfig(ids=12, images_per_id=3, seed=0))
    ours, theirs = _image_bytes(small_set), _image_bytes(more)
    assert all(theirs[name] == data for name, data in ours.items())


# --------------------------------------------------------------------------- format


def test_reid_raw_has_cuhk_pedes_format(small_set):
    entries, _ = _load(small_set)
    assert len(entries) == SMALL.ids * SMALL.images_per_id
    for entry in entries:
        assert set(entry) == ENTRY_FIELDS
        assert isinstance(entry["id"], int)
        assert len(entry["captions"]) == 2 and entry["captions"][0] != entry["captions"][1]
        for caption, tokens in zip(entry["captions"], entry["processed_tokens"]):
            # captions use only "," and "." as punctuation, so this is an independent tokenizer
            assert tokens == caption.lower().replace(",", " ").replace(".", " ").split()
            assert 15 <= len(tokens) <= 40, caption
    assert {e["id"] for e in entries} == set(range(1, SMALL.ids + 1))


def test_splits_are_present_and_disjoint_by_id(small_set):
    entries, identities = _load(small_set)
    ids_by_split = {s: {e["id"] for e in entries if e["split"] == s} for s in ("train", "val", "test")}
    assert all(ids_by_split.values())
    assert {e["split"] for e in entries} == set(ids_by_split)
    assert sum(len(ids) for ids in ids_by_split.values()) == SMALL.ids
    for split, ids in ids_by_split.items():
        assert all(identities[pid]["split"] == split for pid in ids)


def test_images_exist_and_are_rgb_jpeg_crops(small_set):
    entries, _ = _load(small_set)
    for entry in entries:
        path = small_set / "imgs" / entry["file_path"]
        with Image.open(path) as image:
            assert image.format == "JPEG" and image.mode == "RGB"
            w, h = image.size
        assert 0.75 * SMALL.height - 1 <= h <= 1.25 * SMALL.height + 1
        assert 0.32 <= w / h <= 0.46
    assert len({(small_set / "imgs" / e["file_path"]).read_bytes() for e in entries}) == len(entries)


def test_progress_reports_every_image(tmp_path):
    calls = []
    config = SynthConfig(ids=3, images_per_id=2)
    generate_synthpedes(tmp_path / "p", config, progress=lambda done, total: calls.append((done, total)))
    assert calls == [(i, 6) for i in range(1, 7)]


# --------------------------------------------------------------------------- captions


def _caption_problems(caption: str, identity: Identity) -> list[str]:
    """Mandatory mentions missing, or a garment named with a wrong type or colour."""
    tokens = tokenize(caption)
    text = " " + " ".join(tokens) + " "
    problems = []
    if f" {identity.upper_colour} {identity.upper_type} " not in text:
        problems.append("upper garment")
    if identity.lower_type and f" {identity.lower_colour} {identity.lower_type} " not in text:
        problems.append("lower garment")
    if identity.bag_type and f" {identity.bag_colour} {identity.bag_type} " not in text:
        problems.append("bag")
    truth = {
        "upper": (identity.upper_type, identity.upper_colour),
        "lower": (identity.lower_type, identity.lower_colour),
        "shoes": (identity.shoes_type, identity.shoes_colour),
        "bag": (identity.bag_type and identity.bag_type.split()[0], identity.bag_colour),
        "hat": (identity.hat_type, identity.hat_colour),
        "hair": ("hair", identity.hair_colour),
    }
    for i, token in enumerate(tokens):
        slot = NOUN_SLOTS.get(token)
        if slot is None:
            continue
        kind, colour = truth[slot]
        if token != kind:
            problems.append(f"wrong {slot} type {token!r}")
        if i and tokens[i - 1] in COLOUR_WORDS and tokens[i - 1] != colour:
            problems.append(f"wrong {slot} colour {tokens[i - 1]!r}")
    return problems


def test_generated_captions_are_truthful(small_set):
    entries, identities = _load(small_set)
    for entry in entries:
        identity = _identity(identities[entry["id"]])
        for caption in entry["captions"]:
            assert _caption_problems(caption, identity) == [], caption


def test_captions_of_many_identities_are_truthful_and_in_length():
    identities = build_identities(SynthConfig(ids=400, seed=3))
    rng = random.Random(0)
    for record in identities.values():
        identity = _identity(record)
        for caption in make_captions(identity, rng, rng.choice(["front", "back", "left"])):
            assert _caption_problems(caption, identity) == [], caption
            assert 15 <= len(tokenize(caption)) <= 40, caption


def test_caption_checker_catches_a_lie():
    identity = _identity(build_identities(SynthConfig(ids=3))[1])
    wrong = next(c for c in COLOURS if c != identity.upper_colour)
    lie = f"A person wearing {wrong} {identity.upper_type} and nothing else at all today in the street."
    assert _caption_problems(lie, identity)


# --------------------------------------------------------------------------- hard negatives


def _differing_fields(a: dict, b: dict) -> set[str]:
    return {field for field in ATTRIBUTE_FIELDS if a[field] != b[field]}


def test_hard_negatives_of_both_kinds_in_every_split():
    identities = build_identities(SynthConfig(ids=400, seed=5))
    kinds = {}
    for pid, record in identities.items():
        if record["derivation"] is None:
            assert record["derived_from"] is None
            continue
        source = identities[record["derived_from"]]
        assert source["split"] == record["split"] and source["derivation"] is None
        kind = record["derivation"].split(":")[0]
        kinds.setdefault(record["split"], set()).add(kind)
        if kind == "swap_colours":
            assert _differing_fields(record, source) == {"upper_colour", "lower_colour"}
            assert record["upper_colour"] == source["lower_colour"]
            assert record["lower_colour"] == source["upper_colour"]
        else:
            field = record["derivation"].split(":")[1]
            assert _differing_fields(record, source) == {field}
    assert kinds == {split: {"one_attribute", "swap_colours"} for split in ("train", "val", "test")}
    share = sum(r["derivation"] is not None for r in identities.values()) / len(identities)
    assert 0.25 <= share <= 0.35


def test_small_set_identity_file_has_both_derivations(small_set):
    _, identities = _load(small_set)
    derivations = {r["derivation"].split(":")[0] for r in identities.values() if r["derivation"]}
    assert derivations == {"one_attribute", "swap_colours"}


# --------------------------------------------------------------------------- atomicity and config


def test_refuses_non_empty_out_dir_and_leaves_no_temp_dir(small_set, tmp_path):
    with pytest.raises(FileExistsError):
        generate_synthpedes(small_set, SMALL)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert generate_synthpedes(empty, SynthConfig(ids=3, images_per_id=1)) == empty
    assert (empty / "reid_raw.json").exists()
    assert [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name] == []
    assert [p.name for p in small_set.parent.iterdir() if ".tmp-" in p.name] == []


def test_interrupted_generation_leaves_nothing(tmp_path):
    def stop(done, total):
        if done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        generate_synthpedes(tmp_path / "x", SynthConfig(ids=3, images_per_id=2), progress=stop)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"ids": 2}, "ids"),
        ({"images_per_id": 0}, "images_per_id"),
        ({"val_fraction": 1.0}, "val_fraction"),
        ({"test_fraction": -0.1}, "test_fraction"),
        ({"hard_negative_fraction": 1.5}, "hard_negative_fraction"),
        ({"val_fraction": 0.0}, "val_fraction"),
        ({"test_fraction": 0.0}, "test_fraction"),
        ({"val_fraction": 0.5, "test_fraction": 0.5}, "val_fraction"),
        ({"height": 8}, "height"),
    ],
)
def test_bad_config_names_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field) as excinfo:
        SynthConfig(**kwargs)
    assert "\n" not in str(excinfo.value)
