"""The built-in noun-phrase chunkers: the word-list rules, the optional spaCy wrapper, the plugin."""

import subprocess
import sys
import types

import pytest

from mia.core.base.errors import MiaError
from mia.core.registry.plugins import get_component, get_registry
from mia.core.data.tokenizer import tokenize
from mia.plugins.chunkers import rules
from mia.plugins.chunkers.rules import RuleChunker, chunk_phrases

CAPTIONS = [
    ("The woman is wearing a red jacket with long sleeves and blue jeans. She has long brown hair "
     "and is carrying a black backpack. She is wearing white sneakers.",
     ["a red jacket", "long sleeves", "blue jeans", "long brown hair", "a black backpack",
      "white sneakers"]),
    ("A man with short black hair wearing a grey t-shirt, black shorts and a pair of white shoes.",
     ["short black hair", "a grey t-shirt", "black shorts", "a pair of white shoes"]),
    ("This lady has on a long-sleeved green coat and a blue skirt.",
     ["a long-sleeved green coat", "a blue skirt"]),
    ("The girl is dressed in a pink sweater and grey trousers and has a black shoulder bag over "
     "her shoulder.",
     ["a pink sweater", "grey trousers", "a black shoulder bag"]),
    ("A young man in a navy blue hoodie and khaki pants. He is carrying a brown leather bag in his "
     "left hand and wearing brown boots.",
     ["a navy blue hoodie", "khaki pants", "a brown leather bag", "brown boots"]),
    ("The woman has long black hair pulled back into a ponytail. She is wearing a white blouse, a "
     "black knee-length skirt and black high heels and is holding a red purse.",
     ["long black hair", "a ponytail", "a white blouse", "a black knee-length skirt",
      "black high heels", "a red purse"]),
    ("A female pedestrian with shoulder-length blonde hair, wearing a light blue denim jacket over a "
     "white T-shirt, dark blue jeans and a pair of pink sneakers.",
     ["shoulder-length blonde hair", "a light blue denim jacket", "a white t-shirt",
      "dark blue jeans", "a pair of pink sneakers"]),
    ("The man is wearing glasses, a black baseball cap, a grey sweatshirt and black sweat pants. "
     "He has a backpack on his back.",
     ["glasses", "a black baseball cap", "a grey sweatshirt", "black sweat pants", "a backpack"]),
    ("An older man with a grey beard is wearing a dark brown coat, a plaid scarf and black leather "
     "shoes while walking with a cane.",
     ["a grey beard", "a dark brown coat", "a plaid scarf", "black leather shoes"]),
    ("A woman wearing a sleeveless floral dress that reaches her knees, white sandals and "
     "sunglasses. She carries a tan tote bag on her right shoulder.",
     ["a sleeveless floral dress", "white sandals", "sunglasses", "a tan tote bag"]),
    ("The boy is in a red and white striped polo shirt, tan shorts and white socks with blue "
     "sneakers.",
     ["white striped polo shirt", "tan shorts", "white socks", "blue sneakers"]),
    ("Man wearing a black suit jacket, a white dress shirt, a black tie and black dress shoes. He is "
     "also holding a cell phone in his hand.",
     ["a black suit jacket", "a white dress shirt", "a black tie", "black dress shoes",
      "a cell phone"]),
    ("She has short curly brown hair and wears a purple short-sleeved top with white capris and a "
     "black belt. She is holding an umbrella.",
     ["short curly brown hair", "a purple short-sleeved top", "white capris", "a black belt",
      "an umbrella"]),
    ("A woman walking with her head down. She has her hair in a bun and is wearing a beige trench "
     "coat, black tights and ankle boots, and carrying a large brown handbag.",
     ["a bun", "a beige trench coat", "black tights", "ankle boots", "a large brown handbag"]),
    ("THE MAN IS WEARING A GREEN JACKET, BLUE JEANS AND WHITE SNEAKERS.",
     ["a green jacket", "blue jeans", "white sneakers"]),
    ("A guy wearing a white t shirt with a black logo on the front, grey cargo shorts and black flip "
     "flops, carrying a blue backpack.",
     ["a white t shirt", "a black logo", "grey cargo shorts", "black flip flops",
      "a blue backpack"]),
    ("A woman wearing a white shirt and black pants. She is carrying a red bag and wearing black "
     "pants.",
     ["a white shirt", "black pants", "a red bag"]),
    ("A person in a dark-green military style jacket, black skinny jeans and brown ankle-length "
     "boots is holding a bottle of water.",
     ["a dark-green military style jacket", "black skinny jeans", "brown ankle-length boots"]),
    ("A woman with dark hair wearing a black and white polka-dot dress, a red cardigan and red "
     "flats. She has a small black purse.",
     ["dark hair", "white polka-dot dress", "a red cardigan", "red flats", "a small black purse"]),
    ("The man wears a blue plaid button-down shirt tucked into grey slacks, a brown belt and brown "
     "loafers.",
     ["a blue plaid button-down shirt", "grey slacks", "a brown belt", "brown loafers"]),
    ("A woman with her hair in a ponytail is wearing a white sleeveless tank top, light grey "
     "leggings and pink running shoes, and has a black watch on her wrist and white headphones "
     "around her neck.",
     ["a ponytail", "a white sleeveless tank top", "light grey leggings", "pink running shoes",
      "a black watch", "white headphones"]),
    ("This man has short dark hair and a mustache and is wearing a camouflage jacket, olive green "
     "pants and brown work boots. He is carrying a large black duffel bag.",
     ["short dark hair", "a mustache", "a camouflage jacket", "olive green pants",
      "brown work boots", "a large black duffel bag"]),
    ("The girl has a white hat on her head, a blue hooded sweatshirt, black jean shorts over black "
     "tights and grey boots; she is pushing a stroller.",
     ["a white hat", "a blue hooded sweatshirt", "black jean shorts", "black tights", "grey boots",
      "a stroller"]),
    ("A woman in a long dark-grey coat with a fur hood, wearing black gloves and a red knitted "
     "beanie, carrying a white shopping bag and a black handbag.",
     ["a long dark-grey coat", "a fur hood", "black gloves", "a red knitted beanie",
      "a white shopping bag", "a black handbag"]),
    ("A man and a woman are walking. The lady, the guy, a person and some people are standing.",
     []),
]

ALL_PHRASES = [phrase for _, phrases in CAPTIONS for phrase in phrases]


@pytest.mark.parametrize("caption,expected", CAPTIONS, ids=[f"caption{i}" for i in range(len(CAPTIONS))])
def test_cuhk_style_captions(caption, expected):
    assert chunk_phrases(caption) == expected


def test_hyphens_and_case_are_normalised_to_lowercase_as_written():
    assert chunk_phrases("She wears a Dark-Blue T-Shirt and a LONG-SLEEVED Coat.") == [
        "a dark-blue t-shirt", "a long-sleeved coat"]
    assert chunk_phrases("A T shirt, a Tank-Top and black-and-white shoes.") == [
        "a t shirt", "a tank-top", "black-and-white shoes"]


def test_punctuation_is_never_part_of_a_phrase():
    assert chunk_phrases('a "red" coat; (blue jeans)/black shoes!') == ["coat", "blue jeans", "black shoes"]


def test_person_nouns_are_never_phrases_or_inside_one():
    people = set(rules.PERSON_NOUNS)
    assert chunk_phrases("A young man. A tall woman. The lady. A small girl. The male.") == []
    assert all(not people & set(phrase.split()) for phrase in ALL_PHRASES)


def test_phrases_are_never_empty_and_never_cross_a_boundary_word():
    boundaries = {"and", "with", "wearing", "carrying", "holding", "in", "on", "is", "has"}
    for phrase in ALL_PHRASES:
        assert phrase.strip() == phrase and phrase
        assert tokenize(phrase), phrase
        assert not boundaries & set(phrase.split()), phrase


def test_order_of_appearance_and_no_duplicates():
    caption = "Black shoes, a red bag and black shoes. A red bag! Then a red cap and Black Shoes."
    assert chunk_phrases(caption) == ["black shoes", "a red bag", "a red cap"]


def test_body_nouns_need_a_modifier():
    assert chunk_phrases("her hair is tied up; his head; the sleeves") == []
    assert chunk_phrases("long hair, a bald head and short sleeves") == ["long hair", "a bald head", "short sleeves"]


def test_a_noun_before_of_is_not_a_phrase_except_in_a_pair_of():
    assert chunk_phrases("sunglasses on top of her head and a bag of chips") == ["sunglasses"]
    assert chunk_phrases("a pair of black boots and pair of socks") == ["a pair of black boots", "pair of socks"]


def test_bare_and_plural_nouns():
    assert chunk_phrases("He has a backpack, two scarves, some dresses and glasses") == [
        "a backpack", "two scarves", "some dresses", "glasses"]


def test_unknown_words_may_only_modify_inside_a_begun_phrase():
    assert chunk_phrases("a maroon-ish jacket") == ["a maroon-ish jacket"]
    assert chunk_phrases("maroon-ish jacket") == ["jacket"]  # an unknown word never starts one
    assert chunk_phrases("a very light blue coat") == ["a very light blue coat"]
    assert chunk_phrases("a nike brand retro jacket") == ["jacket"]  # three in a row: too many


def test_stop_words_verbs_and_possessives_are_never_modifiers():
    assert chunk_phrases("dressed in black wearing shoes") == ["shoes"]
    assert chunk_phrases("the lady's bag and the black left glove") == ["bag", "glove"]
    assert chunk_phrases("a black or white hat") == ["white hat"]


@pytest.mark.parametrize("caption,expected", [
    ("A fellow clad in a navy hooded top, crimson slacks and cobalt plimsolls is lugging a tan rucksack.",
     ["a navy hooded top", "crimson slacks", "cobalt plimsolls", "a tan rucksack"]),
    ("The lass has flowing chestnut locks and dons an off-white round neck t-shirt, a pair of greyish "
     "denims and a jet-black crossbody bag.",
     ["flowing chestnut locks", "an off-white round neck t-shirt", "a pair of greyish denims",
      "a jet-black crossbody bag"]),
    ("A gent with a shaven scalp wearing an ivory overcoat, a half-sleeved plum jumper and a snapback.",
     ["a shaven scalp", "an ivory overcoat", "a half-sleeved plum jumper", "a snapback"]),
])
def test_everyday_and_rarer_clothing_words_need_no_guessing(caption, expected):
    """Synonyms people use ("slacks", "denims") and rarer ones ("plimsolls", "rucksack") are listed."""
    assert RuleChunker(unknown_modifiers=False)(caption) == expected


def test_strict_rules_keep_only_listed_words():
    strict = RuleChunker(unknown_modifiers=False)
    assert strict("a maroon-ish jacket and a very light blue coat") == ["jacket", "light blue coat"]


def test_word_lists_do_not_overlap():
    groups = [rules.DETERMINERS, rules.MODIFIERS, rules.NOUNS, rules.BODY_NOUNS, rules.PERSON_NOUNS,
              rules.STOP_WORDS]
    for i, first in enumerate(groups):
        for second in groups[i + 1:]:
            assert not first & second, first & second


def test_rules_module_imports_neither_torch_nor_numpy():
    code = ("import sys; import mia.plugins.chunkers.rules; "
            "assert not [m for m in ('torch', 'numpy') if m in sys.modules], 'heavy import'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_chunkers_are_registered():
    names = get_registry("chunker").names()
    assert "rules" in names and "spacy" in names
    assert get_component("chunker", "rules").factory(None)("a red coat") == ["a red coat"]
    assert get_component("chunker", "rule").name == "rules"


def test_rules_options():
    factory = get_component("chunker", "rules").factory
    assert factory("strict")("a teal-ish coat") == ["coat"]
    with pytest.raises(MiaError, match=r"^--chunker rules:fancy: unknown option"):
        factory("fancy")


def _one_line_error(factory, option):
    with pytest.raises(MiaError) as info:
        factory(option)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_spacy_missing_is_a_one_line_error():
    factory = get_component("chunker", "spacy").factory
    message = _one_line_error(factory, "no_such_pipeline_xyz")
    assert message.startswith("--chunker spacy:no_such_pipeline_xyz: ")
    assert ("spaCy is not installed" in message
            or "spaCy pipeline 'no_such_pipeline_xyz' is not installed" in message)


class _FakeNlp:
    def __call__(self, text):
        chunks = [types.SimpleNamespace(text=part.strip()) for part in text.split(" and ")]
        return types.SimpleNamespace(noun_chunks=chunks)


def _fake_spacy(monkeypatch, installed):
    loaded = []

    def load(name):
        if name not in installed:
            raise OSError(f"[E050] Can't find model '{name}'")
        loaded.append(name)
        return _FakeNlp()

    monkeypatch.setitem(sys.modules, "spacy", types.SimpleNamespace(load=load))
    return loaded


def test_spacy_chunker_returns_lowercased_noun_chunks(monkeypatch):
    loaded = _fake_spacy(monkeypatch, installed={"en_core_web_sm", "en_core_web_trf"})
    factory = get_component("chunker", "spacy").factory
    assert factory(None)("A Red Coat and blue jeans") == ["a red coat", "blue jeans"]
    factory("en_core_web_trf")
    assert loaded == ["en_core_web_sm", "en_core_web_trf"]


def test_spacy_pipeline_missing_is_a_one_line_error(monkeypatch):
    _fake_spacy(monkeypatch, installed=set())
    factory = get_component("chunker", "spacy").factory
    assert _one_line_error(factory, None) == (
        "--chunker spacy:en_core_web_sm: spaCy pipeline 'en_core_web_sm' is not installed "
        "(python -m spacy download en_core_web_sm)")
