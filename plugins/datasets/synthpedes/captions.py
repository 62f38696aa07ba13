"""CUHK-PEDES-like captions of a synthetic identity.

Captions vary in wording (people words, verbs, templates, sentence and phrase order) and
in which minor attributes they mention, but they are always truthful and always name the
upper garment, the lower garment (or the dress) and the bag.  Every attribute appears as
a plain noun phrase with the colour right before the garment noun ("a red jacket",
"a pair of blue jeans", "long brown hair"), which is what CUHK-style text looks like and
what a rule-based noun-phrase chunker expects.  Garment nouns are never replaced by
synonyms: the garment type is an attribute, so a synonym would change the meaning.
"""

from __future__ import annotations

import random
import re

from .attributes import Identity

MIN_WORDS = 15
MAX_WORDS = 40

PEOPLE_WORDS = {
    "man": ("man", "guy", "male", "gentleman", "young man"),
    "woman": ("woman", "lady", "female", "girl", "young woman"),
}
_PRONOUNS = {"man": ("he", "his"), "woman": ("she", "her")}
_PLURAL_GARMENTS = ("trousers", "jeans", "shorts", "sneakers", "boots", "shoes", "sandals")

#: (predicate such as "is carrying a black backpack", noun phrase for "with ..." or None)
Extra = tuple[str, str | None]

_TOKEN = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*")


def tokenize(caption: str) -> list[str]:
    """Lowercase word tokens with punctuation dropped (hyphenated words stay whole)."""
    return _TOKEN.findall(caption.lower())


def _with_article(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def _garment(rng: random.Random, colour: str, kind: str) -> str:
    """"blue jeans" / "a pair of blue jeans" for plurals, "a red skirt" for singulars."""
    phrase = f"{colour} {kind}"
    if kind in _PLURAL_GARMENTS:
        return "a pair of " + phrase if rng.random() < 0.35 else phrase
    return _with_article(phrase)


def upper_phrase(identity: Identity, rng: random.Random, sleeves: bool) -> str:
    """The upper garment (or dress), optionally with its sleeve length."""
    core = f"{identity.upper_colour} {identity.upper_type}"
    if not sleeves:
        return _with_article(core)
    if rng.random() < 0.5:
        return _with_article(f"{identity.sleeves}-sleeved {core}")
    return f"{_with_article(core)} with {identity.sleeves} sleeves"


def lower_phrase(identity: Identity, rng: random.Random) -> str:
    return _garment(rng, identity.lower_colour, identity.lower_type)


def shoes_phrase(identity: Identity, rng: random.Random) -> str:
    return _garment(rng, identity.shoes_colour, identity.shoes_type)


def bag_phrase(identity: Identity) -> str:
    return _with_article(f"{identity.bag_colour} {identity.bag_type}")


def hat_phrase(identity: Identity) -> str:
    return _with_article(f"{identity.hat_colour} {identity.hat_type}")


def hair_phrase(identity: Identity, rng: random.Random) -> str:
    """"long brown hair", sometimes without the colour; bald people get "a bald head"."""
    if identity.hair_length == "bald":
        return "a bald head"
    if rng.random() < 0.2:
        return f"{identity.hair_length} hair"
    return f"{identity.hair_length} {identity.hair_colour} hair"


def _join(items: list[str]) -> str:
    """"a, b and c" (the list style of CUHK captions)."""
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + " and " + items[-1]


def _bag_predicate(identity: Identity, rng: random.Random, his: str) -> str:
    bag = bag_phrase(identity)
    options = [f"is carrying {bag}", f"carries {bag}", f"has {bag}"]
    if identity.bag_type == "backpack":
        options += [f"is carrying {bag} on {his} back", f"has {bag} on {his} back"]
    elif identity.bag_type == "handbag":
        options += [f"is holding {bag}", f"is holding {bag} in {his} hand"]
    else:
        options += [f"has {bag} over {his} shoulder", f"is carrying {bag} over {his} shoulder"]
    return rng.choice(options)


def _view_predicate(rng: random.Random, view: str | None) -> str:
    """Rare pose wording that matches the image's view (never left/right: images get flipped)."""
    if view == "back":
        return rng.choice(["is facing away from the camera", "is walking away"])
    if view == "front":
        return rng.choice(["is standing", "is facing the camera", "is walking"])
    return rng.choice(["is walking", "is walking down the street"])


def _wear_predicate(rng: random.Random, items: list[str]) -> str:
    verb = rng.choice(["is wearing", "wears", "is dressed in", "has on"])
    return f"{verb} {_join(items)}"


class _Plan:
    """Which minor attributes one caption mentions, and whether shoes/hat join the clothing list."""

    def __init__(self, identity: Identity, rng: random.Random, detail: str):
        def keep(p: float) -> bool:
            return {"full": True, "minimal": False}.get(detail, rng.random() < p)

        self.sleeves = keep(0.45)
        self.shoes = keep(0.65)
        self.hair = keep(0.7)
        self.hat = identity.hat_type is not None and keep(0.8)
        self.view = keep(0.1)
        self.shoes_in_list = self.shoes and rng.random() < 0.5
        self.hat_in_list = self.hat and rng.random() < 0.3


def _clothing(identity: Identity, rng: random.Random, plan: _Plan) -> list[str]:
    """The noun phrases of the main "wearing" list; upper and lower garments always come first."""
    items = [upper_phrase(identity, rng, plan.sleeves)]
    if identity.lower_type is not None:
        items.append(lower_phrase(identity, rng))
    if plan.shoes_in_list:
        items.append(shoes_phrase(identity, rng))
    if plan.hat_in_list:
        items.append(hat_phrase(identity))
    return items


def _extras(identity: Identity, rng: random.Random, plan: _Plan, view: str | None) -> list[Extra]:
    """The other attributes as (predicate, noun phrase usable after "with" or None), shuffled."""
    his = _PRONOUNS[identity.gender][1]
    extras: list[Extra] = []
    if identity.bag_type is not None:
        extras.append((_bag_predicate(identity, rng, his), bag_phrase(identity)))
    if plan.hair:
        hair = hair_phrase(identity, rng)
        extras.append((f"has {hair}", hair))
    if plan.shoes and not plan.shoes_in_list:
        verb = rng.choice(["is wearing", "wears", "has on"])
        extras.append((f"{verb} {shoes_phrase(identity, rng)}", None))
    if plan.hat and not plan.hat_in_list:
        hat = hat_phrase(identity)
        extras.append((rng.choice([f"is wearing {hat}", f"has {hat} on {his} head"]), hat))
    if plan.view:
        extras.append((_view_predicate(rng, view), None))
    rng.shuffle(extras)
    return extras


def _subject(identity: Identity, rng: random.Random, extras: list[Extra]) -> str:
    """"the man", "a lady", sometimes "a girl with a black backpack" (consuming that extra)."""
    subject = f"{rng.choice(['the', 'a', 'this'])} {rng.choice(PEOPLE_WORDS[identity.gender])}"
    modifiable = [i for i, (_, phrase) in enumerate(extras) if phrase is not None]
    if modifiable and rng.random() < 0.25:
        subject += f" with {extras.pop(rng.choice(modifiable))[1]}"
    return subject


def _main_sentence(identity: Identity, rng: random.Random, clothing: list[str], extras: list[Extra]) -> str:
    """The clothing sentence, in one of several CUHK-like shapes."""
    style = rng.random()
    if style < 0.3:  # fragment: "A man wearing a black jacket and blue jeans."
        subject = _subject(identity, rng, extras).split(" ", 1)[1]
        return f"{_with_article(subject)} {rng.choice(['wearing', 'in', 'dressed in'])} {_join(clothing)}."
    subject = _subject(identity, rng, extras)
    if style < 0.5 and extras:
        return f"{subject} {_wear_predicate(rng, clothing)} and {extras.pop()[0]}."
    return f"{subject} {_wear_predicate(rng, clothing)}."


def _compose(identity: Identity, rng: random.Random, view: str | None, detail: str) -> str:
    """One caption: a clothing sentence plus short pronoun sentences for the other attributes."""
    plan = _Plan(identity, rng, detail)
    he = _PRONOUNS[identity.gender][0]
    clothing = _clothing(identity, rng, plan)
    extras = _extras(identity, rng, plan, view)
    if extras and rng.random() < 0.2:  # lead with a detail: "A lady has long hair. She is wearing ..."
        predicate = extras.pop()[0]
        lead = f"{_subject(identity, rng, extras)} {predicate}."
        sentences = [lead, f"{he} {_wear_predicate(rng, clothing)}."]
    else:
        sentences = [_main_sentence(identity, rng, clothing, extras)]
    while extras:
        take = min(len(extras), rng.choice((1, 2, 2)))
        sentences.append(f"{he} {' and '.join(predicate for predicate, _ in extras[:take])}.")
        del extras[:take]
    return " ".join(sentence[0].upper() + sentence[1:] for sentence in sentences)


def _acceptable(caption: str) -> bool:
    return MIN_WORDS <= len(tokenize(caption)) <= MAX_WORDS


def make_caption(identity: Identity, rng: random.Random, view: str | None = None) -> str:
    """A caption of ``identity`` with MIN_WORDS..MAX_WORDS words.

    Random plans are tried first; sparse identities may need every detail ("full") and
    rich ones may need only the mandatory attributes ("minimal") to fit the length range.
    """
    for detail in ["random"] * 20 + ["full"] * 10 + ["minimal"] * 10:
        caption = _compose(identity, rng, view, detail)
        if _acceptable(caption):
            return caption
    raise RuntimeError(f"no caption of {MIN_WORDS}-{MAX_WORDS} words for {identity}")


def make_captions(identity: Identity, rng: random.Random, view: str | None = None) -> list[str]:
    """Two different captions of one image (CUHK-PEDES has two annotators per image)."""
    first = make_caption(identity, rng, view)
    for _ in range(50):
        second = make_caption(identity, rng, view)
        if second != first:
            return [first, second]
    raise RuntimeError(f"could not make two different captions for {identity}")
