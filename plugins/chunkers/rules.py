"""The default noun-phrase chunker: word lists and one left-to-right scan, standard library only.

Why rules and not a parser: CUHK-PEDES captions are a narrow language (garments, colours,
bags, hair), a phrase list must be identical at training time and in the deployed
torch-free ONNX runtime, and 80k captions must chunk in seconds.  This module therefore
imports nothing outside the standard library.

A phrase is ``[quantity] [determiner] modifier* noun+``:

* quantity: ``a pair of`` / ``pair of`` (the only place "of" may appear in a phrase);
* determiner: one of :data:`DETERMINERS`;
* modifiers: words of :data:`MODIFIERS` (colours, patterns, materials, sizes, lengths), or
  hyphenated words made only of modifiers ("dark-blue", "black-and-white");
* nouns: :data:`NOUNS` (garments, footwear, bags, accessories, hairstyles, carried
  objects, their plurals) and :data:`COMPOUND_NOUNS` ("tank top", "t shirt", "t-shirt");
  consecutive nouns form one head ("a sweater vest", "high heel shoes").

Further rules, each there to keep a phrase meaningful:

* Body nouns (:data:`BODY_NOUNS`: hair, head, sleeves, ...) need a modifier: "long brown
  hair" and "a bald head" are phrases, "her hair" and "his head" are not.
* A head followed by "of" is not a phrase ("on top of her head", "a bag of chips").
* Unknown modifiers: words that are in no list may sit inside a phrase that has already
  begun (after a determiner, quantity or modifier), at most two in a row and only right
  before a modifier or a noun: "a maroon-ish jacket", "a very light blue shirt", "a
  military style jacket".  They never start a phrase, and
  :data:`STOP_WORDS`, person nouns, "-ing" words, possessives and numbers never qualify.
  ``RuleChunker(unknown_modifiers=False)`` (``--chunker rules:strict``) turns this off.
* Everything else ("and", ",", "with", verbs, prepositions, person nouns) ends a phrase.

Phrases are lowercase, keep hyphens as written, drop punctuation, come in order of
appearance and are never repeated.
"""

from __future__ import annotations

import re

# --- word lists -----------------------------------------------------------------------

DETERMINERS = frozenset("a an the his her their some one two".split())
QUANTITY_PREFIXES = (("a", "pair", "of"), ("pair", "of"))

COLOURS = frozenset("""
    black white red blue green yellow grey gray brown pink purple orange violet navy
    khaki beige tan maroon burgundy cream teal turquoise olive gold golden silver
    blonde blond auburn light dark bright pale colorful colourful multicolored
    multicoloured neon plain
    off-white all-black jet-black pitch-black colored coloured
    whitish reddish bluish greenish yellowish greyish grayish brownish pinkish purplish orangish
    royal deep vivid pure medium forest leaf grass sunflower steel stone coffee bubblegum candy
    crimson scarlet cherry ruby cobalt sapphire ultramarine emerald jade lemon canary mustard
    slate pewter ashen chocolate mocha walnut rose rosy blush plum amethyst eggplant
    tangerine pumpkin amber ivory snowy alabaster ebony onyx inky
    raven chestnut brunette flaxen honey silvery fair greying graying
""".split())
PATTERNS = frozenset("""
    striped plaid checkered checked floral flowered polka-dot printed patterned
    camouflage camo graphic spotted dotted solid
""".split())
MATERIALS = frozenset("""
    denim leather cotton wool woolen woollen woolly knit knitted jean suede silk fur furry lace
    plastic canvas fleece puffy padded
""".split())
SHAPES = frozenset("""
    long short big small large little tall high low tight loose baggy fitted skinny
    thick thin wide mini bald curly straight wavy bare
    knee ankle mid length knee-length ankle-length shoulder-length
    sleeve sleeved long-sleeved short-sleeved sleeveless heeled high-heeled
    hooded collared v neck framed rimmed open toed casual formal sport sports athletic
    crossbody cross-body full half round flat flared strappy peaked brimmed hand-held
    zip-up button-down button-up simple nice outdoor summer winter office
    flowing lengthy cropped closely shaved shaven hairless
""".split())
MODIFIERS = COLOURS | PATTERNS | MATERIALS | SHAPES

#: singular nouns (their plurals are added by :func:`_plural`)
CLOTHING = """
    shirt tee top blouse jacket coat sweater sweatshirt hoodie cardigan vest
    dress skirt suit uniform jumpsuit outfit blazer parka windbreaker jersey polo tunic
    gown robe apron pullover tank tshirt crewneck oxford bomber overcoat topcoat greatcoat
    jumper hoody frock minidress miniskirt
"""
FOOTWEAR = "shoe sneaker boot sandal heel slipper loafer sock stocking trainer plimsoll chukka brogue espadrille"
ACCESSORIES = """
    backpack bag handbag purse tote satchel briefcase suitcase umbrella hat cap beanie
    helmet hood scarf belt watch bracelet necklace earring glove mask headband tie
    bookbag rucksack knapsack daypack haversack pocketbook clutch snapback ballcap fedora
    trilby toque skullcap
"""
CARRIED = "phone cellphone bottle book folder box bicycle bike stroller"
HAIRSTYLES = "ponytail bun braid beard mustache moustache"
PATTERN_NOUNS = "stripe dot logo print pattern design"
#: nouns used only as they are (plural-only or uncountable)
INVARIABLE_NOUNS = """
    jeans shorts pants trousers slacks leggings tights khakis capris overalls clothes clothing
    luggage glasses sunglasses eyeglasses goggles headphones earphones flats bangs pigtails
    denims chinos corduroys dungarees bermudas kicks booties
"""
_IRREGULAR_PLURALS = {"scarf": "scarves"}

COMPOUND_NOUNS = """
    t shirt | tee shirt | polo shirt | dress shirt | tank top | crop top | tube top |
    baseball cap | baseball hat | shoulder bag | messenger bag | tote bag | hand bag |
    back pack | book bag | gym bag | shopping bag | paper bag | fanny pack | flip flop |
    tennis shoe | running shoe | dress shoe | high heel | rain coat | trench coat |
    lab coat | suit jacket | ski jacket | sweat pants | yoga pants | cargo pants |
    cargo shorts | rain boot | face mask | school bag | side bag | sling bag | gym shoe
"""

#: body nouns are phrases only with a modifier ("long hair", not "her hair")
BODY_NOUNS = frozenset("hair head sleeves skin legs arms locks scalp".split())
#: never phrases, never unknown modifiers ("a young man", "the lady's bag")
PERSON_NOUNS = frozenset("""
    man men woman women lady ladies girl girls guy guys person people male males female
    females boy boys gentleman gentlemen kid kids child children pedestrian pedestrians
    adult adults teenager teen individual lad fellow gent chap bloke dude gal lass madam dame
""".split())
#: at most this many unlisted words in a row count as modifiers ("a military style jacket")
MAX_UNKNOWN_RUN = 2
#: words that may never be taken for an unknown modifier
STOP_WORDS = frozenset("""
    and or but nor with without wearing wears wear worn carrying carries carry holding
    holds hold in on of at to into onto over under around across from by for near
    behind beside between while as is are was were be been has have had also who that
    which this these those there it its he she they him them than then not no
    dressed paired left right other another same
    clad dons attired garbed clothed outfitted lugs hauls grips put got strapped
    slung draped appears seems looks like what also
""".split())


def _plural(noun: str) -> str:
    if noun in _IRREGULAR_PLURALS:
        return _IRREGULAR_PLURALS[noun]
    return noun + ("es" if noun.endswith(("s", "sh", "ch", "x")) else "s")


def _with_plurals(words: str) -> set[str]:
    singulars = words.split()
    return set(singulars) | {_plural(word) for word in singulars}


def _compounds(text: str) -> set[tuple[str, ...]]:
    """Each compound as written and in the plural ("tank top", "tank tops")."""
    compounds = set()
    for entry in text.split("|"):
        *first, last = entry.split()
        compounds |= {(*first, last), (*first, _plural(last))}
    return compounds


NOUNS = frozenset(
    _with_plurals(" ".join((CLOTHING, FOOTWEAR, ACCESSORIES, CARRIED, HAIRSTYLES, PATTERN_NOUNS)))
    | set(INVARIABLE_NOUNS.split())
)
_MULTIWORD = _compounds(COMPOUND_NOUNS)
#: hyphenated spellings of the compounds ("t-shirt", "tank-tops") are one-token nouns
_HYPHENATED = frozenset("-".join(words) for words in _MULTIWORD)

# --- tagging --------------------------------------------------------------------------

DET, MOD, NOUN, BODY = "det", "mod", "noun", "body"
_TAGS = {
    **{word: MOD for word in MODIFIERS},
    **{word: NOUN for word in NOUNS | _HYPHENATED},
    **{word: BODY for word in BODY_NOUNS},
    **{word: DET for word in DETERMINERS},
}


def _by_first_word(compounds: set[tuple[str, ...]]) -> dict[str, list[tuple[str, ...]]]:
    """First word -> the compounds starting with it, longest first (so the longest wins)."""
    index: dict[str, list[tuple[str, ...]]] = {}
    for words in sorted(compounds, key=len, reverse=True):
        index.setdefault(words[0], []).append(words)
    return index


_COMPOUNDS_BY_FIRST = _by_first_word(_MULTIWORD)

_TOKEN = re.compile(r"[a-z0-9]+(?:['-][a-z0-9]+)*|[^\sa-z0-9]")
_PLAIN_WORD = re.compile(r"[a-z]+(?:-[a-z]+)*")


def _tag(word: str) -> str | None:
    """DET, MOD, NOUN, BODY or None.

    Unlisted hyphenated words are read from their parts: all modifiers ("dark-blue",
    "black-and-white") make a modifier, modifiers before a noun ("mini-skirt") a noun.
    """
    tag = _TAGS.get(word)
    if tag is None and "-" in word:
        parts = word.split("-")
        if all(part in MODIFIERS or part == "and" for part in parts):
            return MOD
        if all(part in MODIFIERS for part in parts[:-1]):
            last = _TAGS.get(parts[-1])
            return last if last in (NOUN, BODY) else None
    return tag


def _may_be_unknown_modifier(word: str) -> bool:
    """Could a word in no list be a modifier ("teal-ish")?  Never a verb-like or stop word."""
    return (
        _PLAIN_WORD.fullmatch(word) is not None
        and word not in STOP_WORDS
        and word not in PERSON_NOUNS
        and not word.endswith("ing")
    )


def tokens_of(caption: str) -> list[str]:
    """Lowercase words (hyphens and apostrophes kept inside) and single punctuation marks."""
    return _TOKEN.findall(caption.lower().replace("\u2019", "'"))


# --- chunking -------------------------------------------------------------------------


class RuleChunker:
    """``chunker(caption) -> list[str]``: the noun phrases of a caption (see the module doc)."""

    def __init__(self, unknown_modifiers: bool = True):
        self.unknown_modifiers = unknown_modifiers

    def __call__(self, caption: str) -> list[str]:
        tokens = tokens_of(caption)
        tags = [_tag(token) for token in tokens]
        phrases: dict[str, None] = {}  # an ordered set
        start = 0
        while start < len(tokens):
            end = self._phrase_end(tokens, tags, start)
            if end:
                phrases.setdefault(" ".join(tokens[start:end]))
                start = end
            else:
                start += 1
        return list(phrases)

    def _phrase_end(self, tokens: list[str], tags: list[str | None], start: int) -> int:
        """Index just past the phrase that begins at ``start``, or 0 when none begins there."""
        i = _after_quantity(tokens, start)
        if i == start and tags[i] == DET:
            i += 1
        modified = False
        while i < len(tokens) and not _noun_length(tokens, tags, i):
            if tags[i] == MOD or self._unknown_modifier_at(tokens, tags, i, opened=i > start):
                modified = True
                i += 1
            else:
                return 0
        end, head_tag = _head_end(tokens, tags, i)
        if end == i or (head_tag == BODY and not modified):
            return 0
        if end < len(tokens) and tokens[end] == "of":
            return 0
        return end

    def _unknown_modifier_at(self, tokens: list[str], tags: list[str | None], i: int,
                             opened: bool) -> bool:
        """An unlisted word inside a begun phrase, in a run of at most
        ``MAX_UNKNOWN_RUN`` such words that ends right before a modifier or noun."""
        if not (self.unknown_modifiers and opened):
            return False
        for k in range(i, min(i + MAX_UNKNOWN_RUN, len(tokens) - 1)):
            if tags[k] is not None or not _may_be_unknown_modifier(tokens[k]):
                return False
            if tags[k + 1] == MOD or _noun_length(tokens, tags, k + 1):
                return True
        return False


def _after_quantity(tokens: list[str], i: int) -> int:
    for prefix in QUANTITY_PREFIXES:
        if tuple(tokens[i:i + len(prefix)]) == prefix:
            return i + len(prefix)
    return i


def _noun_length(tokens: list[str], tags: list[str | None], i: int) -> int:
    """How many tokens the noun at ``i`` spans: a compound, one noun word, or 0."""
    for compound in _COMPOUNDS_BY_FIRST.get(tokens[i], ()):
        if tuple(tokens[i:i + len(compound)]) == compound:
            return len(compound)
    return 1 if tags[i] in (NOUN, BODY) else 0


def _head_end(tokens: list[str], tags: list[str | None], i: int) -> tuple[int, str | None]:
    """End of the run of nouns from ``i`` and the tag of its last noun (the head)."""
    head_tag = None
    while i < len(tokens):
        length = _noun_length(tokens, tags, i)
        if not length:
            break
        head_tag = tags[i] if length == 1 else NOUN
        i += length
    return i, head_tag


_DEFAULT = RuleChunker()


def chunk_phrases(caption: str) -> list[str]:
    """The noun phrases of ``caption`` with the default rules."""
    return _DEFAULT(caption)
