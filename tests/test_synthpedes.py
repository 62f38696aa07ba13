"""Tests of the built-in synthetic data set (format, truthfulness, wording, determinism, atomicity)."""

from __future__ import annotations

import dataclasses
import json
import random
import re
from pathlib import Path

import pytest
from PIL import Image

from mia.core.data.records import load_dataset
from mia.core.data.tokenizer import tokenize as model_tokenize
from mia.plugins.chunkers.rules import RuleChunker
from mia.plugins.datasets import synthpedes_source
from mia.plugins.datasets.synthpedes import DEFAULT_SET, IDENTITY_FILE, UNSEEN_ANNOTATION_FILE, SynthConfig, generate_synthpedes
from mia.plugins.datasets.synthpedes.attributes import (
    ATTRIBUTE_FIELDS,
    BAG_TYPES,
    COLOURS,
    HAT_TYPES,
    LOWER_TYPES,
    SHOE_TYPES,
    UPPER_TYPES,
    Identity,
)
from mia.plugins.datasets.synthpedes.captions import MAX_SENTENCES, make_captions, tokenize
from mia.plugins.datasets.synthpedes.generate import build_identities
from mia.plugins.datasets.synthpedes.wording import FUNCTION_WORDS, HELD_OUT, TRAINING, Wording

SMALL = SynthConfig(ids=12, images_per_id=2, seed=0)
ENTRY_FIELDS = {"split", "captions", "file_path", "processed_tokens", "id"}
WORDINGS = {"training": TRAINING, "held-out": HELD_OUT}

#: What every garment word of both wordings names, written out here (not taken from
#: wording.py) so that the truthfulness check is an independent statement of meaning.
NOUNS_BY_TYPE = {
    "t-shirt": "t-shirt | tee shirt | t shirt | tee | tshirt | round neck t-shirt | crewneck | jersey",
    "shirt": "shirt | button-down shirt | button-up shirt | collared shirt | dress shirt | formal shirt"
             " | oxford | polo",
    "jacket": "jacket | zip-up jacket | short jacket | outdoor jacket | windbreaker | bomber",
    "coat": "coat | long coat | winter coat | trench coat | woolen coat | overcoat | topcoat | greatcoat",
    "sweater": "sweater | knit sweater | knitted sweater | woolly sweater | wool sweater | jumper | pullover",
    "hoodie": "hoodie | hooded top | hooded sweatshirt | hoodie sweatshirt | hoody",
    "dress": "dress | knee-length dress | short dress | frock | minidress",
    "trousers": "trousers | pants | slacks | long pants | dress pants | formal trousers | long trousers"
                " | chinos | corduroys",
    "jeans": "jeans | denims | denim jeans | denim pants | jean pants | dungarees",
    "shorts": "shorts | short pants | summer shorts | short trousers | bermudas",
    "skirt": "skirt | short skirt | flared skirt | knee-length skirt | miniskirt",
    "sneakers": "sneakers | trainers | running shoes | tennis shoes | sport shoes | athletic shoes | gym shoes"
                " | plimsolls | kicks",
    "boots": "boots | ankle boots | short boots | leather boots | low boots | booties | chukkas",
    "shoes": "shoes | leather shoes | dress shoes | flat shoes | formal shoes | office shoes | loafers | brogues",
    "sandals": "sandals | open-toed sandals | strappy sandals | summer sandals | flip-flops | espadrilles",
    "backpack": "backpack | back pack | school bag | bookbag | book bag | rucksack | knapsack | daypack",
    "handbag": "handbag | hand bag | hand-held bag | small handbag | purse | clutch | pocketbook",
    "shoulder bag": "shoulder bag | side bag | crossbody bag | cross-body bag | sling bag | satchel | haversack",
    "cap": "cap | baseball cap | peaked cap | sports cap | snapback | ballcap",
    "hat": "hat | brimmed hat | wide-brimmed hat | fedora | trilby",
    "beanie": "beanie | knit cap | knitted hat | woolly hat | winter hat | wool hat | toque | skullcap",
    "hair": "hair | locks",
}
#: The base colour every colour word of both wordings names (garments and hair).
COLOUR_WORDS = {
    "black": "black | dark | all-black | jet-black | pitch-black | black-colored | ebony | onyx | inky | raven",
    "white": "white | off-white | whitish | bright white | pure white | ivory | snowy | alabaster",
    "red": "red | bright red | reddish | deep red | vivid red | crimson | scarlet | cherry | ruby",
    "blue": "blue | navy | dark blue | navy blue | royal blue | bluish | deep blue | cobalt | sapphire"
            " | ultramarine",
    "green": "green | dark green | forest green | greenish | leaf green | grass green | emerald | jade",
    "yellow": "yellow | bright yellow | yellowish | vivid yellow | sunflower yellow | lemon | canary | mustard",
    "grey": "grey | gray | greyish | grayish | medium grey | mid gray | steel grey | stone grey | slate | pewter"
            " | ashen | greying | graying | silver | silvery",
    "brown": "brown | brownish | dark brown | coffee-colored | medium brown | chocolate | mocha | walnut"
             " | chestnut | brunette",
    "pink": "pink | pinkish | bubblegum pink | candy pink | rose | rosy | blush",
    "purple": "purple | violet | purplish | dark purple | deep purple | plum | amethyst | eggplant",
    "orange": "orange | bright orange | orangish | vivid orange | tangerine | pumpkin | amber",
    "blonde": "blonde | blond | fair | light blonde | golden | flaxen | honey",
}


def _phrase_table(meanings: dict[str, str]) -> dict[tuple[str, ...], str]:
    """Phrase (as caption tokens) -> meaning, from "meaning: phrase | phrase | ..." entries."""
    return {tuple(tokenize(p)): meaning for meaning, phrases in meanings.items() for p in phrases.split(" | ")}


NOUN_TYPES = _phrase_table(NOUNS_BY_TYPE)
COLOUR_OF = _phrase_table(COLOUR_WORDS)
SLOT_OF_TYPE = {
    **{t: "upper" for t in UPPER_TYPES},
    **{t: "lower" for t in LOWER_TYPES},
    **{t: "shoes" for t in SHOE_TYPES},
    **{t: "bag" for t in BAG_TYPES},
    **{t: "hat" for t in HAT_TYPES},
    "hair": "hair",
}
CORRECT_SPELLING = {wrong: right for right, wrong in TRAINING.misspellings.items()}


@pytest.fixture(scope="module")
def small_set(tmp_path_factory) -> Path:
    return generate_synthpedes(tmp_path_factory.mktemp("synth") / "a", SMALL)


def _load(data_dir: Path, annotation_file: str = "reid_raw.json") -> tuple[list[dict], dict[int, dict]]:
    entries = json.loads((data_dir / annotation_file).read_text())
    identities = {int(k): v for k, v in json.loads((data_dir / IDENTITY_FILE).read_text()).items()}
    return entries, identities


def _identity(record: dict) -> Identity:
    return Identity(**{field: record[field] for field in ATTRIBUTE_FIELDS})


def _image_bytes(data_dir: Path) -> dict[str, bytes]:
    return {str(p.relative_to(data_dir)): p.read_bytes() for p in sorted((data_dir / "imgs").rglob("*.jpg"))}


# --------------------------------------------------------------------------- determinism


def test_same_seed_gives_identical_bytes_whatever_the_workers_and_other_seed_differs(small_set, tmp_path):
    again = generate_synthpedes(tmp_path / "b", SMALL, workers=3)  # small_set was drawn in this process
    assert (again / "reid_raw.json").read_bytes() == (small_set / "reid_raw.json").read_bytes()
    assert (again / IDENTITY_FILE).read_bytes() == (small_set / IDENTITY_FILE).read_bytes()
    assert (again / UNSEEN_ANNOTATION_FILE).read_bytes() == (small_set / UNSEEN_ANNOTATION_FILE).read_bytes()
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
    generate_synthpedes(tmp_path / "q", config, progress=lambda done, total: calls.append((done, total)), workers=2)
    assert calls == [(i, 6) for i in range(1, 7)] * 2


# --------------------------------------------------------------------------- captions


def _noun_at(tokens: list[str], i: int) -> tuple[int, str] | None:
    """(length, type) of the longest garment, bag, hat or hair noun starting at token ``i``."""
    for n in (3, 2, 1):
        key = tuple(tokens[i:i + n])
        if len(key) == n and key in NOUN_TYPES:
            return n, NOUN_TYPES[key]
    return None


def _colour_before(tokens: list[str], i: int) -> str | None:
    """The base colour of the longest colour phrase that ends right before token ``i``."""
    for n in (2, 1):
        key = tuple(tokens[max(i - n, 0):i])
        if len(key) == n and key in COLOUR_OF:
            return COLOUR_OF[key]
    return None


def _mentions(tokens: list[str]) -> list[tuple[str, str, str | None]]:
    """(slot, type, colour or None) of every garment, bag, hat or hair noun in the caption."""
    mentions, i = [], 0
    while i < len(tokens):
        noun = _noun_at(tokens, i)
        if noun is None:
            i += 1
            continue
        mentions.append((SLOT_OF_TYPE[noun[1]], noun[1], _colour_before(tokens, i)))
        i += noun[0]
    return mentions


def _caption_problems(caption: str, identity: Identity) -> list[str]:
    """Mandatory mentions missing, or a garment named with a wrong type or colour.

    Every synonym and misspelling of either wording is read back to its attribute; the
    colour is the colour phrase right before the noun ("navy blue slacks" -> blue trousers).
    """
    mentions = _mentions([CORRECT_SPELLING.get(token, token) for token in tokenize(caption)])
    truth = {
        "upper": (identity.upper_type, identity.upper_colour),
        "lower": (identity.lower_type, identity.lower_colour),
        "shoes": (identity.shoes_type, identity.shoes_colour),
        "bag": (identity.bag_type, identity.bag_colour),
        "hat": (identity.hat_type, identity.hat_colour),
        "hair": ("hair", identity.hair_colour),
    }
    problems = []
    for slot, kind, colour in mentions:
        if kind != truth[slot][0]:
            problems.append(f"wrong {slot} type {kind!r}")
        elif colour is not None and colour != truth[slot][1]:
            problems.append(f"wrong {slot} colour {colour!r}")
    mandatory = {"upper garment": "upper", "lower garment": "lower", "bag": "bag"}
    for name, slot in mandatory.items():
        if truth[slot][0] is not None and (slot, *truth[slot]) not in mentions:
            problems.append(name)
    return problems


def _identity_records(config: SynthConfig) -> list[tuple[dict, Identity]]:
    return [(record, _identity(record)) for record in build_identities(config).values()]


def test_generated_captions_are_truthful(small_set):
    for name in ("reid_raw.json", UNSEEN_ANNOTATION_FILE):
        entries, identities = _load(small_set, name)
        for entry in entries:
            identity = _identity(identities[entry["id"]])
            for caption in entry["captions"]:
                assert _caption_problems(caption, identity) == [], caption


@pytest.mark.parametrize("wording", WORDINGS.values(), ids=WORDINGS.keys())
def test_captions_of_many_identities_are_truthful_and_in_length(wording):
    """... and every word of a caption comes from its wording table or is a function word."""
    rng, words = random.Random(0), _table_words(wording) | FUNCTION_WORDS
    for _, identity in _identity_records(SynthConfig(ids=400, seed=3)):
        for caption in make_captions(identity, rng, rng.choice(["front", "back", "left"]), wording):
            assert _caption_problems(caption, identity) == [], caption
            assert 15 <= len(tokenize(caption)) <= 40, caption
            assert set(model_tokenize(caption)) <= words, caption


def test_caption_checker_catches_a_lie():
    identity = _identity(build_identities(SynthConfig(ids=3))[1])
    wrong = next(c for c in COLOURS if c != identity.upper_colour)
    lie = f"A person wearing {wrong} {identity.upper_type} and nothing else at all today in the street."
    assert _caption_problems(lie, identity)


def test_caption_checker_catches_lies_told_in_synonyms():
    identity = _identity(build_identities(SynthConfig(ids=3))[1])
    wrong_colour = next(c for c in COLOURS if c != identity.upper_colour)
    wrong_type = next(t for t in UPPER_TYPES if t != identity.upper_type)
    true_noun, true_colour = HELD_OUT.nouns[identity.upper_type][0], TRAINING.colours[identity.upper_colour][-1]
    colour_lie = f"A fellow clad in a {HELD_OUT.colours[wrong_colour][0]} {true_noun} and nothing else."
    type_lie = f"A person wearing a {true_colour} {TRAINING.nouns[wrong_type][-1]} and nothing else."
    assert "wrong upper colour" in " ".join(_caption_problems(colour_lie, identity))
    assert "wrong upper type" in " ".join(_caption_problems(type_lie, identity))


def test_checker_tables_name_what_both_wordings_mean():
    """Every garment and colour word of either wording is in the checker's tables, with the same meaning."""
    for wording in WORDINGS.values():
        for kind, nouns in {**wording.nouns, "hair": wording.hair_nouns}.items():
            assert {noun: NOUN_TYPES.get(tuple(tokenize(noun))) for noun in nouns} == dict.fromkeys(nouns, kind)
        for base, words in [*wording.colours.items(), *wording.hair_colours.items()]:
            assert {word: COLOUR_OF.get(tuple(tokenize(word))) for word in words} == dict.fromkeys(words, base)


def test_misspellings_are_one_token_and_no_real_word():
    real = _table_words(TRAINING, tokenize) - set(TRAINING.misspellings.values())
    for right, wrong in TRAINING.misspellings.items():
        assert tokenize(right) == [right] and tokenize(wrong) == [wrong]
        assert wrong not in real and wrong not in _table_words(HELD_OUT, tokenize)


def test_sentence_count_and_misspelling_share():
    rng = random.Random(1)
    captions = [c for _, identity in _identity_records(SynthConfig(ids=400, seed=2))
                for c in make_captions(identity, rng, "front")]
    counts = {caption.count(". ") + 1 for caption in captions}
    assert counts == set(range(1, MAX_SENTENCES + 1))
    misspelt = [sum(token in CORRECT_SPELLING for token in tokenize(c)) for c in captions]
    assert max(misspelt) == 1
    assert 0.02 <= sum(misspelt) / len(captions) <= 0.09


# --------------------------------------------------------------------------- vocabulary


def _strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (tuple, list)):
        return [text for item in value for text in _strings(item)]
    return []  # None: a phrase this wording never says


def _table_words(wording: Wording, tokenizer=model_tokenize) -> set[str]:
    """Every word a caption in ``wording`` can contain (template placeholders removed)."""
    texts = [text for field in dataclasses.fields(wording) for text in _strings(getattr(wording, field.name))]
    return {token for text in texts for token in tokenizer(re.sub(r"\{\w+\}", " ", text))}


def test_training_vocabulary_of_the_default_set_is_in_the_hundreds():
    """The model's tokens over the default set's train captions (views aside, which add a few)."""
    config, rng, vocabulary = DEFAULT_SET, random.Random(0), set()
    for record, identity in _identity_records(config):
        if record["split"] == "train":
            for _ in range(config.images_per_id):
                vocabulary.update(*(model_tokenize(c) for c in make_captions(identity, rng)))
    assert len(vocabulary) >= 250


def test_held_out_wording_shares_only_function_words_with_training():
    shared = _table_words(TRAINING) & _table_words(HELD_OUT)
    assert shared <= FUNCTION_WORDS, sorted(shared - FUNCTION_WORDS)
    assert len(_table_words(HELD_OUT) - FUNCTION_WORDS) >= 100


def test_unseen_test_captions_use_no_training_word(small_set):
    entries, _ = _load(small_set)
    training = _table_words(TRAINING) | {t for e in entries for c in e["captions"] for t in model_tokenize(c)}
    held_out = _table_words(HELD_OUT) - FUNCTION_WORDS
    assert not held_out & training
    unseen, _ = _load(small_set, UNSEEN_ANNOTATION_FILE)
    test_captions = [c for e in unseen if e["split"] == "test" for c in e["captions"]]
    assert test_captions
    for caption in test_captions:
        assert not (set(model_tokenize(caption)) - FUNCTION_WORDS) & training, caption


def test_unseen_file_differs_from_reid_raw_only_in_test_captions(small_set):
    entries, _ = _load(small_set)
    unseen, _ = _load(small_set, UNSEEN_ANNOTATION_FILE)
    assert len(unseen) == len(entries)
    for entry, other in zip(entries, unseen):
        assert [other[k] for k in ("split", "file_path", "id")] == [entry[k] for k in ("split", "file_path", "id")]
        if entry["split"] == "test":
            assert set(other["captions"]).isdisjoint(entry["captions"]) and len(set(other["captions"])) == 2
            assert other["processed_tokens"] == [tokenize(c) for c in other["captions"]]
        else:
            assert other == entry


def test_synthpedes_unseen_data_set(small_set, monkeypatch):
    normal, unseen = load_dataset(str(small_set)), load_dataset(f"synthpedes-unseen:{small_set}")
    assert normal.name == "cuhk-pedes" and unseen.name == "synthpedes-unseen"
    assert unseen.split("train") == normal.split("train") and unseen.split("val") == normal.split("val")
    pairs = list(zip(normal.split("test"), unseen.split("test")))
    assert pairs and all(a.image == b.image and set(a.captions).isdisjoint(b.captions) for a, b in pairs)
    monkeypatch.setattr(synthpedes_source, "ensure_synthpedes", lambda: small_set)  # the cached default
    assert load_dataset("synthpedes-unseen").records == unseen.records


def test_attribute_phrases_of_both_wordings_are_chunked_without_guessing():
    """Every colour, garment and hair word is in the chunker's word lists (strict rules)."""
    strict = RuleChunker(unknown_modifiers=False)
    for wording in WORDINGS.values():
        colours = [c for words in wording.colours.values() for c in words]
        hair_colours = [c for words in wording.hair_colours.values() for c in words]
        phrases = [f"a {colour} {noun}" for colour in colours for nouns in wording.nouns.values() for noun in nouns]
        phrases += [f"a {modifier} red coat" for modifier in wording.modifiers]
        phrases += [f"{length} {colour} {noun}" for lengths in wording.hair_lengths.values() for length in lengths
                    for colour in hair_colours for noun in wording.hair_nouns]
        phrases += list(wording.bald)
        for phrase in phrases:
            assert strict(phrase) == [phrase]


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
        ({"val_fraction": 0.5, "test_fraction": 0.5}, "leave no train identity out of ids=400"),
        ({"val_ids": 300, "test_ids": 100}, "300 val and 100 test identities leave no train identity"),
        ({"test_ids": 0}, "test_ids"),
        ({"height": 8}, "height"),
    ],
)
def test_bad_config_names_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field) as excinfo:
        SynthConfig(**kwargs)
    assert "\n" not in str(excinfo.value)


def test_twins_file_lists_every_hard_negative_and_loads_with_the_data(small_set):
    identities = json.loads((small_set / IDENTITY_FILE).read_text())
    twins = json.loads((small_set / "twins.json").read_text())
    derived = {(record["derived_from"], int(pid)) for pid, record in identities.items() if record["derived_from"]}
    assert {(t["a"], t["b"]) for t in twins} == derived and derived
    for spec in (str(small_set), f"synthpedes-unseen:{small_set}"):
        assert sorted(load_dataset(spec).twins) == sorted(derived)


def test_cars_fit_any_crop():
    """A parked car in a tall, narrow crop can be too short for its window (it was a crash)."""
    from PIL import Image, ImageDraw

    from mia.plugins.datasets.synthpedes.render import _car

    image = Image.new("RGB", (12, 120))
    for seed in range(200):
        _car(ImageDraw.Draw(image), random.Random(seed), 12, 120, 100.0)
