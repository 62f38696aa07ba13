"""The words synthpedes captions are written in: a training table and a held-out table.

:data:`TRAINING` writes every caption of ``reid_raw.json``.  It has the variety of real
annotators: synonyms and paraphrases for every attribute ("pants", "slacks", "navy",
"trainers", "hooded top"), several people words and verbs, and a table of common
misspellings, so a model trained on synthpedes meets the words people actually use.

:data:`HELD_OUT` names the same attributes with other words that a pretrained language
model knows as synonyms ("crimson" for red, "rucksack" for backpack, "chinos" for
trousers, "clad in" for wearing).  It writes only the test captions of
``reid_raw_unseen.json``, the "unseen words" test: there a model can only succeed by
mapping words it never saw onto what it learned.

The rule that makes that test meaningful: apart from :data:`FUNCTION_WORDS` (articles,
pronouns and a few prepositions) the two tables share no word, so no held-out word can
ever appear in a training caption.  That is why every word a caption can contain lives
here, templates included (``captions.py`` adds only function words and punctuation), and
why the held-out table simply has no sleeve or "pair of" wording: every such phrase uses
a word ("sleeves", "pair") that training captions need.

Every word must stay truthful for what is drawn.  A garment word never changes the
garment type (jeans may be "denims" or "denim pants" but never plain "pants", a skirt
is never "shorts"), and a colour word fits
its base colour in :data:`attributes.COLOURS` ("dark" is black, "navy" is the drawn
mid-dark blue, but a mid grey is never "light grey").  In every tuple the plain word
comes first; captions prefer it, as annotators do.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Words both tables may use: they carry no attribute, so sharing them leaks nothing.
FUNCTION_WORDS = frozenset("a an the this and with who is has he she his her in on of from".split())


@dataclass(frozen=True)
class Wording:
    """Every content word a caption can contain, for one vocabulary.

    Templates hold ``{item}`` (the noun phrase), ``{his}`` (the possessive pronoun),
    ``{wear}``/``{carry}`` (a verb of :attr:`wear`/:attr:`carry`), ``{garment}`` and
    ``{length}`` (sleeves).  Empty tables (or None) mean "never say this", which is how the
    held-out wording avoids phrases it has no fresh words for.
    """

    people: dict[str, tuple[str, ...]]  # gender -> person nouns
    scenes: tuple[str, ...]  # said after the subject: "the man in the photo"
    openers: tuple[str, ...]  # before a fragment: "there is a man wearing ..."
    colours: dict[str, tuple[str, ...]]  # garment, shoe, bag and hat colours
    hair_colours: dict[str, tuple[str, ...]]
    nouns: dict[str, tuple[str, ...]]  # attribute type (upper, lower, shoes, bag, hat) -> nouns
    modifiers: tuple[str, ...]  # optional word before a garment's colour ("a plain white tee")
    pair: str | None  # quantity before plural garments ("a pair of")
    sleeve_lengths: dict[str, tuple[str, ...]]  # "long"/"short" -> words
    sleeve_templates: tuple[str, ...]
    hair_nouns: tuple[str, ...]
    hair_lengths: dict[str, tuple[str, ...]]  # "long"/"short" -> words
    bald: tuple[str, ...]  # noun phrases for a bald head
    wear: tuple[str, ...]  # finite verbs: "he {wear} ..."
    wear_fragment: tuple[str, ...]  # after a bare subject: "a man {wearing} ..."
    also: str | None  # "she also has ..." in later sentences
    carry: tuple[str, ...]
    bag_templates: dict[str, tuple[str, ...]]  # bag type -> predicates besides "{carry} {item}"
    shoe_templates: tuple[str, ...]
    hat_templates: tuple[str, ...]
    hair_templates: tuple[str, ...]
    views: dict[str, tuple[str, ...]]  # "front", "back", "side" -> predicates
    misspellings: dict[str, str]  # correct token -> how some annotators type it


TRAINING = Wording(
    people={
        "man": ("man", "guy", "male", "gentleman", "young man", "person", "pedestrian", "adult male",
                "individual", "lad", "male pedestrian"),
        "woman": ("woman", "lady", "female", "girl", "young woman", "person", "pedestrian", "young lady",
                  "individual", "female pedestrian"),
    },
    scenes=("in the picture", "in the photo", "in this image", "in the image", "in the video",
            "in the photograph", "in the footage", "in this clip"),
    openers=("there is", "this is", "the picture shows", "the image shows", "this photo shows", "we can see",
             "here we see", "pictured is"),
    colours={
        "black": ("black", "dark", "all-black", "jet-black", "pitch-black", "black-colored"),
        "white": ("white", "off-white", "whitish", "bright white", "pure white"),
        "red": ("red", "bright red", "reddish", "deep red", "vivid red"),
        "blue": ("blue", "navy", "dark blue", "navy blue", "royal blue", "bluish", "deep blue"),
        "green": ("green", "dark green", "forest green", "greenish", "leaf green", "grass green"),
        "yellow": ("yellow", "bright yellow", "yellowish", "vivid yellow", "sunflower yellow"),
        "grey": ("grey", "gray", "greyish", "grayish", "medium grey", "mid gray", "steel grey", "stone grey"),
        "brown": ("brown", "brownish", "dark brown", "coffee-colored", "medium brown"),
        "pink": ("pink", "pinkish", "bubblegum pink", "candy pink"),
        "purple": ("purple", "violet", "purplish", "dark purple", "deep purple"),
        "orange": ("orange", "bright orange", "orangish", "vivid orange"),
    },
    hair_colours={
        "black": ("black", "dark", "jet-black"),
        "brown": ("brown", "dark brown", "brownish"),
        "blonde": ("blonde", "blond", "fair", "light blonde"),
        "grey": ("grey", "gray", "greying", "graying"),
    },
    nouns={
        "t-shirt": ("t-shirt", "tee shirt", "t shirt", "tee", "tshirt"),
        "shirt": ("shirt", "button-down shirt", "button-up shirt", "collared shirt", "dress shirt", "formal shirt"),
        "jacket": ("jacket", "zip-up jacket", "short jacket", "outdoor jacket"),
        "coat": ("coat", "long coat", "winter coat", "trench coat", "woolen coat"),
        "sweater": ("sweater", "knit sweater", "knitted sweater", "woolly sweater", "wool sweater"),
        "hoodie": ("hoodie", "hooded top", "hooded sweatshirt", "hoodie sweatshirt"),
        "dress": ("dress", "knee-length dress", "short dress"),
        "trousers": ("trousers", "pants", "slacks", "long pants", "dress pants", "formal trousers"),
        "jeans": ("jeans", "denims", "denim jeans", "denim pants", "jean pants"),
        "shorts": ("shorts", "short pants", "summer shorts"),
        "skirt": ("skirt", "short skirt", "flared skirt", "knee-length skirt"),
        "sneakers": ("sneakers", "trainers", "running shoes", "tennis shoes", "sport shoes", "athletic shoes"),
        "boots": ("boots", "ankle boots", "short boots", "leather boots"),
        "shoes": ("shoes", "leather shoes", "dress shoes", "flat shoes", "formal shoes"),
        "sandals": ("sandals", "open-toed sandals", "strappy sandals", "summer sandals"),
        "backpack": ("backpack", "back pack", "school bag", "bookbag", "book bag"),
        "handbag": ("handbag", "hand bag", "hand-held bag"),
        "shoulder bag": ("shoulder bag", "side bag", "crossbody bag", "cross-body bag", "sling bag"),
        "cap": ("cap", "baseball cap", "peaked cap", "sports cap"),
        "hat": ("hat", "brimmed hat", "wide-brimmed hat"),
        "beanie": ("beanie", "knit cap", "knitted hat", "woolly hat", "winter hat", "wool hat"),
    },
    modifiers=("plain", "simple", "casual", "nice"),
    pair="a pair of",
    sleeve_lengths={"long": ("long", "full"), "short": ("short", "half")},
    sleeve_templates=("{length}-sleeved {garment}", "{length} sleeve {garment}", "{garment} with {length} sleeves"),
    hair_nouns=("hair",),
    hair_lengths={"long": ("long",), "short": ("short",)},
    bald=("a bald head", "a shaved head", "a shaved bald head"),
    wear=("is wearing", "wears", "is dressed in", "has on", "is sporting", "appears to be wearing",
          "seems to be wearing", "is clothed in", "is outfitted in", "has put on",
          "is wearing what looks like"),
    wear_fragment=("wearing", "in", "dressed in", "sporting"),
    also="also",
    carry=("is carrying", "carries", "has", "is toting", "has got"),
    bag_templates={
        "backpack": ("{carry} {item} on {his} back", "has {item} on {his} back", "wears {item} on {his} back",
                     "has {item} strapped to {his} back"),
        "handbag": ("is holding {item}", "holds {item}", "is holding {item} in {his} hand",
                    "has {item} in {his} hand", "carries {item} by hand"),
        "shoulder bag": ("has {item} over {his} shoulder", "{carry} {item} over {his} shoulder",
                         "has {item} on {his} shoulder", "has {item} slung over {his} shoulder",
                         "has {item} hanging from {his} shoulder"),
    },
    shoe_templates=("{wear} {item}", "has {item} on {his} feet", "is walking in {item}"),
    hat_templates=("{wear} {item}", "has {item} on {his} head", "is wearing {item} on top of {his} head"),
    hair_templates=("has {item}", "has got {item}"),
    views={
        "back": ("is facing away from the camera", "is walking away", "has {his} back to the camera",
                 "is shown from the back"),
        "front": ("is standing", "is facing the camera", "is walking", "is walking towards the camera",
                  "is looking at the camera", "is standing still"),
        "side": ("is walking", "is walking down the street", "is crossing the road", "is walking on the sidewalk",
                 "is on the move", "is passing by"),
    },
    misspellings={
        "trousers": "trowsers", "jacket": "jaket", "sneakers": "sneekers", "backpack": "backback",
        "t-shirt": "t-shrit", "wearing": "wering", "carrying": "carring", "sweater": "sweather",
        "shoulder": "sholder", "handbag": "hanbag", "black": "balck", "white": "whtie",
        "grey": "gery", "jeans": "jeens", "hoodie": "hoddie", "skirt": "skrit", "sandals": "sandles",
        "pants": "pnats", "purple": "purpel", "yellow": "yelow", "brown": "browm", "boots": "bootes",
        "shoes": "shose", "shirt": "shrit", "sleeves": "sleves", "hair": "hiar", "wears": "weares",
        "woman": "womna", "orange": "orenge", "green": "gren", "blue": "bleu", "pink": "pnik",
        "holding": "holdng", "shorts": "shortes", "beanie": "beenie", "trainers": "trainners",
        "carries": "carrys", "short": "shrot", "dress": "dres", "coat": "coath", "slacks": "slaks",
    },
)

HELD_OUT = Wording(
    people={
        "man": ("fellow", "gent", "chap", "bloke", "dude"),
        "woman": ("gal", "lass", "madam", "dame"),
    },
    scenes=("in the snapshot", "in this shot", "in the frame"),
    openers=("the snapshot depicts", "the frame captures"),
    colours={
        "black": ("ebony", "onyx", "inky"),
        "white": ("ivory", "snowy", "alabaster"),
        "red": ("crimson", "scarlet", "cherry", "ruby"),
        "blue": ("cobalt", "sapphire", "ultramarine"),
        "green": ("emerald", "jade"),
        "yellow": ("lemon", "canary", "mustard"),
        "grey": ("slate", "pewter", "ashen"),
        "brown": ("chocolate", "mocha", "walnut"),
        "pink": ("rose", "rosy", "blush"),
        "purple": ("plum", "amethyst", "eggplant"),
        "orange": ("tangerine", "pumpkin", "amber"),
    },
    hair_colours={
        "black": ("raven", "ebony"),
        "brown": ("chestnut", "brunette", "chocolate"),
        "blonde": ("golden", "flaxen", "honey"),
        "grey": ("silver", "silvery", "ashen"),
    },
    nouns={
        "t-shirt": ("crewneck", "jersey"),
        "shirt": ("oxford", "polo"),
        "jacket": ("windbreaker", "bomber"),
        "coat": ("overcoat", "topcoat", "greatcoat"),
        "sweater": ("jumper", "pullover"),
        "hoodie": ("hoody",),
        "dress": ("frock", "minidress"),
        "trousers": ("chinos", "corduroys"),
        "jeans": ("dungarees",),
        "shorts": ("bermudas",),
        "skirt": ("miniskirt",),
        "sneakers": ("plimsolls", "kicks"),
        "boots": ("booties", "chukkas"),
        "shoes": ("loafers", "brogues"),
        "sandals": ("flip-flops", "espadrilles"),
        "backpack": ("rucksack", "knapsack", "daypack"),
        "handbag": ("purse", "clutch", "pocketbook"),
        "shoulder bag": ("satchel", "haversack"),
        "cap": ("snapback", "ballcap"),
        "hat": ("fedora", "trilby"),
        "beanie": ("toque", "skullcap"),
    },
    modifiers=("solid",),
    pair=None,
    sleeve_lengths={},
    sleeve_templates=(),
    hair_nouns=("locks",),
    hair_lengths={"long": ("flowing", "lengthy"), "short": ("cropped", "closely cropped")},
    bald=("a shaven scalp", "a hairless scalp"),
    wear=("is clad in", "dons", "is donning", "is attired in", "is garbed in"),
    wear_fragment=("clad in", "donning", "attired in"),
    also=None,
    carry=("is lugging", "lugs", "is hauling", "hauls"),
    bag_templates={
        "backpack": (),
        "handbag": ("is clutching {item}", "grips {item}"),
        "shoulder bag": ("has {item} draped across {his} torso",),
    },
    shoe_templates=("{wear} {item}",),
    hat_templates=("{wear} {item}",),
    hair_templates=("has {item}",),
    views={
        "back": ("is seen from behind", "is photographed from behind"),
        "front": ("is strolling", "is ambling"),
        "side": ("is strolling", "is ambling", "strolls past"),
    },
    misspellings={},
)
