"""Identity attributes of synthetic pedestrians and how they are sampled.

An identity is a fixed outfit (plus gender, hair and skin); every image of it is drawn
from these attributes and every caption describes them.  The vocabulary follows the
words that dominate CUHK-PEDES captions, so a model (and a phrase chunker) trained on
this data meets the same kind of language as on the real data set.

Hard negatives are identities made on purpose to be confusable with another one: a copy
that differs in exactly one attribute, or a copy whose upper and lower garment colours
are swapped.  They force a retrieval model to use the whole caption (colour *and* which
garment it belongs to) rather than a bag of colour words.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, replace

#: CUHK-like colour words and their base RGB (images jitter them per garment and image).
COLOURS: dict[str, tuple[int, int, int]] = {
    "black": (28, 28, 32),
    "white": (232, 232, 226),
    "red": (190, 32, 38),
    "blue": (42, 74, 165),
    "green": (44, 122, 62),
    "yellow": (226, 200, 52),
    "grey": (128, 128, 130),
    "brown": (112, 72, 42),
    "pink": (232, 142, 172),
    "purple": (112, 52, 132),
    "orange": (236, 122, 32),
}

HAIR_COLOURS: dict[str, tuple[int, int, int]] = {
    "black": (24, 20, 18),
    "brown": (96, 60, 34),
    "blonde": (212, 182, 112),
    "grey": (162, 160, 156),
}

#: Skin tones are drawn, never captioned (CUHK captions rarely mention them).
SKIN_TONES: tuple[tuple[int, int, int], ...] = (
    (242, 200, 172),
    (226, 176, 132),
    (200, 140, 96),
    (150, 96, 58),
    (98, 62, 40),
)

UPPER_TYPES = ("t-shirt", "shirt", "jacket", "coat", "sweater", "hoodie", "dress")
LOWER_TYPES = ("trousers", "jeans", "shorts", "skirt")
SHOE_TYPES = ("sneakers", "boots", "shoes", "sandals")
BAG_TYPES = ("backpack", "handbag", "shoulder bag")
HAT_TYPES = ("cap", "hat", "beanie")

#: Upper types whose sleeves are always long (a short-sleeved coat is implausible).
LONG_SLEEVED_ONLY = ("jacket", "coat", "sweater", "hoodie")

#: The attribute fields of an identity, in a stable order (identities.json uses them).
ATTRIBUTE_FIELDS = (
    "gender",
    "skin",
    "hair_length",
    "hair_colour",
    "upper_type",
    "upper_colour",
    "sleeves",
    "lower_type",
    "lower_colour",
    "shoes_type",
    "shoes_colour",
    "bag_type",
    "bag_colour",
    "hat_type",
    "hat_colour",
)

_GARMENT_COLOUR_WEIGHTS = {
    "black": 3.0, "white": 2.4, "grey": 1.5, "blue": 1.5, "red": 1.2, "green": 0.8,
    "yellow": 0.6, "brown": 0.8, "pink": 0.7, "purple": 0.6, "orange": 0.5,
}
_JEANS_COLOUR_WEIGHTS = {"blue": 6.0, "black": 2.5, "grey": 1.0, "white": 0.5}
_LOWER_COLOUR_WEIGHTS = {
    "black": 3.0, "grey": 1.5, "blue": 1.2, "brown": 1.0, "white": 0.8, "red": 0.3,
    "green": 0.3, "yellow": 0.2, "pink": 0.3, "purple": 0.2, "orange": 0.2,
}
_SHOE_COLOUR_WEIGHTS = {
    "black": 3.0, "white": 2.5, "brown": 1.5, "grey": 1.0, "red": 0.3, "blue": 0.3,
    "green": 0.2, "yellow": 0.2, "pink": 0.2, "purple": 0.2, "orange": 0.2,
}
_BAG_COLOUR_WEIGHTS = {
    "black": 3.0, "brown": 1.5, "grey": 1.0, "blue": 0.8, "red": 0.7, "white": 0.5,
    "green": 0.5, "pink": 0.5, "purple": 0.4, "yellow": 0.3, "orange": 0.3,
}


@dataclass(frozen=True)
class Identity:
    """The fixed attributes of one synthetic person.

    ``None`` means "absent": no lower garment under a dress, no hair colour when bald,
    no bag, no hat.  ``skin`` indexes :data:`SKIN_TONES`.
    """

    gender: str
    skin: int
    hair_length: str
    hair_colour: str | None
    upper_type: str
    upper_colour: str
    sleeves: str
    lower_type: str | None
    lower_colour: str | None
    shoes_type: str
    shoes_colour: str
    bag_type: str | None
    bag_colour: str | None
    hat_type: str | None
    hat_colour: str | None

    def to_dict(self) -> dict:
        """A JSON-ready dict of the attribute fields."""
        return asdict(self)


def _pick(rng: random.Random, weights: dict[str, float]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _sample_hair(rng: random.Random, gender: str) -> tuple[str, str | None]:
    weights = {"short": 0.8, "bald": 0.1, "long": 0.1} if gender == "man" else {"long": 0.75, "short": 0.25}
    length = _pick(rng, weights)
    if length == "bald":
        return length, None
    return length, _pick(rng, {"black": 4.5, "brown": 3.0, "blonde": 1.5, "grey": 1.0})


def _sample_upper(rng: random.Random, gender: str) -> tuple[str, str, str]:
    weights = {"t-shirt": 2.0, "shirt": 2.0, "jacket": 2.0, "coat": 1.5, "sweater": 1.5, "hoodie": 1.0}
    if gender == "woman":
        weights["dress"] = 1.5
    kind = _pick(rng, weights)
    return kind, _pick(rng, _GARMENT_COLOUR_WEIGHTS), _sample_sleeves(rng, kind)


def _sample_sleeves(rng: random.Random, upper_type: str) -> str:
    if upper_type in LONG_SLEEVED_ONLY:
        return "long"
    p_short = {"t-shirt": 0.85, "shirt": 0.45, "dress": 0.6}[upper_type]
    return "short" if rng.random() < p_short else "long"


def _sample_lower(rng: random.Random, gender: str, upper_colour: str) -> tuple[str, str]:
    weights = {"trousers": 3.0, "jeans": 3.0, "shorts": 1.0}
    if gender == "woman":
        weights.update(trousers=2.0, jeans=2.5, skirt=1.5)
    kind = _pick(rng, weights)
    palette = _JEANS_COLOUR_WEIGHTS if kind == "jeans" else _LOWER_COLOUR_WEIGHTS
    colour = _pick(rng, palette)
    if colour == upper_colour:  # allowed (all-black outfits exist) but made rarer
        colour = _pick(rng, palette)
    return kind, colour


def _sample_shoes(rng: random.Random, bare_legs: bool) -> tuple[str, str]:
    weights = {"sneakers": 3.0, "shoes": 2.0, "boots": 1.2, "sandals": 1.2 if bare_legs else 0.3}
    return _pick(rng, weights), _pick(rng, _SHOE_COLOUR_WEIGHTS)


def _sample_bag(rng: random.Random, gender: str) -> tuple[str | None, str | None]:
    handbag = 2.0 if gender == "woman" else 0.3
    weights = {"none": 4.0, "backpack": 3.0, "shoulder bag": 1.5, "handbag": handbag}
    kind = _pick(rng, weights)
    if kind == "none":
        return None, None
    return kind, _pick(rng, _BAG_COLOUR_WEIGHTS)


def _sample_hat(rng: random.Random) -> tuple[str | None, str | None]:
    if rng.random() < 0.8:
        return None, None
    return rng.choice(HAT_TYPES), _pick(rng, _GARMENT_COLOUR_WEIGHTS)


def sample_identity(rng: random.Random) -> Identity:
    """Draw one plausible identity (a dress replaces the lower garment, etc.)."""
    gender = rng.choice(("man", "woman"))
    hair_length, hair_colour = _sample_hair(rng, gender)
    upper_type, upper_colour, sleeves = _sample_upper(rng, gender)
    if upper_type == "dress":
        lower_type = lower_colour = None
    else:
        lower_type, lower_colour = _sample_lower(rng, gender, upper_colour)
    shoes_type, shoes_colour = _sample_shoes(rng, lower_type in (None, "shorts", "skirt"))
    bag_type, bag_colour = _sample_bag(rng, gender)
    hat_type, hat_colour = _sample_hat(rng)
    return Identity(
        gender=gender,
        skin=rng.randrange(len(SKIN_TONES)),
        hair_length=hair_length,
        hair_colour=hair_colour,
        upper_type=upper_type,
        upper_colour=upper_colour,
        sleeves=sleeves,
        lower_type=lower_type,
        lower_colour=lower_colour,
        shoes_type=shoes_type,
        shoes_colour=shoes_colour,
        bag_type=bag_type,
        bag_colour=bag_colour,
        hat_type=hat_type,
        hat_colour=hat_colour,
    )


def _alternatives(source: Identity, field: str) -> list[str]:
    """Values that ``field`` may take instead of its current one, keeping the outfit plausible."""
    current = getattr(source, field)
    if field in ("upper_colour", "lower_colour", "shoes_colour", "bag_colour", "hat_colour"):
        options = list(COLOURS)
    elif field == "hair_colour":
        options = list(HAIR_COLOURS)
    elif field == "upper_type":
        # Same sleeve length must stay valid, and a dress would change the lower garment too.
        options = [t for t in UPPER_TYPES[:-1] if source.sleeves == "long" or t not in LONG_SLEEVED_ONLY]
    elif field == "lower_type":
        options = [t for t in LOWER_TYPES if source.gender == "woman" or t != "skirt"]
    elif field == "shoes_type":
        options = list(SHOE_TYPES)
    elif field == "bag_type":
        options = list(BAG_TYPES)
    else:
        raise ValueError(f"no alternatives defined for field {field!r}")
    return [value for value in options if value != current]


def one_attribute_fields(source: Identity) -> dict[str, float]:
    """The fields a one-attribute hard negative of ``source`` may change, with weights.

    Only fields that can change alone qualify: adding a bag would also add a bag colour,
    so "bag_colour" is offered only when there already is a bag, and so on.  Attributes
    that every caption mentions (upper, lower, bag) weigh most, so most negatives can be
    told apart from the text; the others (shoes, hair, hat) are sometimes omitted from a
    caption, which leaves a few genuinely ambiguous pairs, as in real data.
    """
    weights = {"upper_colour": 3.0, "upper_type": 1.0, "shoes_colour": 1.0, "shoes_type": 0.5}
    if source.lower_type is not None:
        weights.update(lower_colour=3.0, lower_type=1.0)
    if source.bag_type is not None:
        weights.update(bag_colour=2.0, bag_type=1.0)
    if source.hat_type is not None:
        weights["hat_colour"] = 1.0
    if source.hair_colour is not None:
        weights["hair_colour"] = 0.7
    return weights


def derive_one_attribute(source: Identity, rng: random.Random) -> tuple[Identity, str]:
    """A copy of ``source`` that differs in exactly one attribute; returns it and the field."""
    field = _pick(rng, one_attribute_fields(source))
    return replace(source, **{field: rng.choice(_alternatives(source, field))}), field


def can_swap_colours(source: Identity) -> bool:
    """Whether swapping upper and lower colours yields a different identity."""
    return source.lower_colour is not None and source.lower_colour != source.upper_colour


def derive_swap_colours(source: Identity) -> Identity:
    """A copy of ``source`` with the upper and lower garment colours exchanged."""
    return replace(source, upper_colour=source.lower_colour, lower_colour=source.upper_colour)


@dataclass(frozen=True)
class Member:
    """One identity of a group; a hard negative records its source's index in the group."""

    identity: Identity
    derived_from: int | None = None
    derivation: str | None = None


def _choose_source(rng: random.Random, eligible: list[int], used: set[int]) -> int:
    """Prefer a source not used yet, so the negatives spread over many identities."""
    fresh = [index for index in eligible if index not in used]
    source = rng.choice(fresh or eligible)
    used.add(source)
    return source


def _derive(rng: random.Random, bases: list[Identity], want_swap: bool, used: set[int]) -> Member:
    swappable = [index for index, base in enumerate(bases) if can_swap_colours(base)]
    if want_swap and swappable:
        source = _choose_source(rng, swappable, used)
        return Member(derive_swap_colours(bases[source]), source, "swap_colours")
    source = _choose_source(rng, list(range(len(bases))), used)
    identity, field = derive_one_attribute(bases[source], rng)
    return Member(identity, source, f"one_attribute:{field}")


def sample_group(rng: random.Random, count: int, hard_negative_fraction: float) -> list[Member]:
    """Sample ``count`` identities of which about ``hard_negative_fraction`` are hard negatives.

    A group is one split: negatives are derived from identities of the same group, so every
    split gets its own confusable pairs.  The two derivations alternate, and the members
    are shuffled so a negative does not simply sit next to its source.
    """
    n_hard = min(round(count * hard_negative_fraction), count - 1)
    bases = [sample_identity(rng) for _ in range(count - n_hard)]
    used: set[int] = set()
    members = [Member(base) for base in bases]
    members += [_derive(rng, bases, want_swap=i % 2 == 1, used=used) for i in range(n_hard)]
    order = list(range(count))
    rng.shuffle(order)
    position = {old: new for new, old in enumerate(order)}
    return [_renumbered(members[old], position) for old in order]


def _renumbered(member: Member, position: dict[int, int]) -> Member:
    if member.derived_from is None:
        return member
    return replace(member, derived_from=position[member.derived_from])
