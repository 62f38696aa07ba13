"""CUHK-PEDES-like captions of a synthetic identity.

Captions vary in wording (every content word comes from a :class:`~.wording.Wording`
table: people words, verbs, synonyms of garments and colours, misspellings), in sentence
shape, order and count (1 to :data:`MAX_SENTENCES`), and in which minor attributes they
mention, but they are always truthful and always name the upper garment, the lower
garment (or the dress) and the bag.  Every attribute appears as a plain noun phrase with
the colour right before the garment noun ("a navy hoodie", "a pair of grey slacks",
"long brown hair"), which is what CUHK-style text looks like and what a rule-based
noun-phrase chunker expects.  Synonyms never change the garment type: the type is an
attribute, so the tables only hold words that name the same type.
"""

from __future__ import annotations

import random
import re

from .attributes import Identity
from .wording import TRAINING, Wording

MIN_WORDS = 15
MAX_WORDS = 40
MAX_SENTENCES = 4
#: share of captions with one misspelled word (real annotations have a few typos)
MISSPELLED_SHARE = 0.05
#: how often a table's first (plain) word is taken outright: "black" is commoner than "dark"
PLAIN_WORD_SHARE = 0.5

_PRONOUNS = {"man": ("he", "his"), "woman": ("she", "her")}
_DETERMINERS = ("the", "a", "this")
_PLURAL_TYPES = ("trousers", "jeans", "shorts", "sneakers", "boots", "shoes", "sandals")

#: (predicate such as "is carrying a black backpack", noun phrase for "with ..." or None)
Extra = tuple[str, str | None]

_TOKEN = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*")


def tokenize(caption: str) -> list[str]:
    """Lowercase word tokens with punctuation dropped (hyphenated words stay whole)."""
    return _TOKEN.findall(caption.lower())


def _with_article(phrase: str) -> str:
    return ("an " if phrase[0] in "aeiou" else "a ") + phrase


def _join(items: list[str]) -> str:
    """"a, b and c" (the list style of CUHK captions)."""
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + " and " + items[-1]


def _vary(rng: random.Random, words: tuple[str, ...]) -> str:
    """The plain (first) word often, any word otherwise, as annotators choose words."""
    return words[0] if rng.random() < PLAIN_WORD_SHARE else rng.choice(words)


class _Plan:
    """Which minor attributes one caption mentions, and whether shoes/hat join the clothing list."""

    def __init__(self, identity: Identity, wording: Wording, rng: random.Random, detail: str):
        def keep(p: float) -> bool:
            return {"full": True, "minimal": False}.get(detail, rng.random() < p)

        self.sleeves = keep(0.45) and bool(wording.sleeve_templates)  # a wording may have no sleeve words
        self.shoes = keep(0.65)
        self.hair = keep(0.7)
        self.hat = identity.hat_type is not None and keep(0.8)
        self.view = keep(0.1)
        self.shoes_in_list = self.shoes and rng.random() < 0.5
        self.hat_in_list = self.hat and rng.random() < 0.3


class _Writer:
    """Writes the phrases and sentences of one caption of ``identity`` in ``wording``."""

    def __init__(self, identity: Identity, wording: Wording, rng: random.Random):
        self.identity, self.words, self.rng = identity, wording, rng
        self.he, self.his = _PRONOUNS[identity.gender]

    # --- noun phrases -----------------------------------------------------------------

    def _core(self, kind: str, colour: str) -> str:
        """"navy hoodie", now and then "plain white tee": colour right before the noun."""
        words = [_vary(self.rng, self.words.colours[colour]), _vary(self.rng, self.words.nouns[kind])]
        if self.words.modifiers and self.rng.random() < 0.1:
            words.insert(0, self.rng.choice(self.words.modifiers))
        return " ".join(words)

    def garment(self, kind: str, colour: str) -> str:
        """"blue jeans" / "a pair of blue jeans" for plurals, "a red skirt" for singulars."""
        phrase = self._core(kind, colour)
        if kind in _PLURAL_TYPES:
            return f"{self.words.pair} {phrase}" if self.words.pair and self.rng.random() < 0.35 else phrase
        return _with_article(phrase)

    def upper(self, sleeves: bool) -> str:
        """The upper garment (or dress), optionally with its sleeve length."""
        identity = self.identity
        if not sleeves:
            return self.garment(identity.upper_type, identity.upper_colour)
        template = self.rng.choice(self.words.sleeve_templates)
        length = _vary(self.rng, self.words.sleeve_lengths[identity.sleeves])
        return _with_article(template.format(garment=self._core(identity.upper_type, identity.upper_colour),
                                             length=length))

    def lower(self) -> str:
        return self.garment(self.identity.lower_type, self.identity.lower_colour)

    def shoes(self) -> str:
        return self.garment(self.identity.shoes_type, self.identity.shoes_colour)

    def bag(self) -> str:
        return self.garment(self.identity.bag_type, self.identity.bag_colour)

    def hat(self) -> str:
        return self.garment(self.identity.hat_type, self.identity.hat_colour)

    def hair(self) -> str:
        """"long brown hair", sometimes without the colour; bald people get "a bald head"."""
        identity = self.identity
        if identity.hair_length == "bald":
            return self.rng.choice(self.words.bald)
        length = _vary(self.rng, self.words.hair_lengths[identity.hair_length])
        noun = self.rng.choice(self.words.hair_nouns)
        if self.rng.random() < 0.2:
            return f"{length} {noun}"
        return f"{length} {_vary(self.rng, self.words.hair_colours[identity.hair_colour])} {noun}"

    # --- predicates -------------------------------------------------------------------

    def _fill(self, templates: tuple[str, ...], item: str = "") -> str:
        """One of ``templates`` with its placeholders filled in (see :class:`Wording`)."""
        return self.rng.choice(templates).format(
            item=item, his=self.his, wear=self.rng.choice(self.words.wear), carry=self.rng.choice(self.words.carry)
        )

    def wear(self, items: list[str]) -> str:
        return f"{self.rng.choice(self.words.wear)} {_join(items)}"

    def bag_extra(self) -> Extra:
        bag = self.bag()
        return self._fill(("{carry} {item}", *self.words.bag_templates[self.identity.bag_type]), bag), bag

    def view(self, view: str | None) -> str:
        """Rare pose wording that matches the image's view (never left/right: images get flipped)."""
        return self._fill(self.words.views[view if view in ("front", "back") else "side"])

    def extras(self, plan: _Plan, view: str | None) -> list[Extra]:
        """The attributes outside the clothing list as (predicate, noun phrase for "with ..." or None), shuffled."""
        extras: list[Extra] = []
        if self.identity.bag_type is not None:
            extras.append(self.bag_extra())
        if plan.hair:
            hair = self.hair()
            extras.append((self._fill(self.words.hair_templates, hair), hair))
        if plan.shoes and not plan.shoes_in_list:
            extras.append((self._fill(self.words.shoe_templates, self.shoes()), None))
        if plan.hat and not plan.hat_in_list:
            hat = self.hat()
            extras.append((self._fill(self.words.hat_templates, hat), hat))
        if plan.view:
            extras.append((self.view(view), None))
        self.rng.shuffle(extras)
        return extras

    def clothing(self, plan: _Plan) -> list[str]:
        """The noun phrases of the main "wearing" list; upper and lower garments always come first."""
        items = [self.upper(plan.sleeves)]
        if self.identity.lower_type is not None:
            items.append(self.lower())
        if plan.shoes_in_list:
            items.append(self.shoes())
        if plan.hat_in_list:
            items.append(self.hat())
        return items

    # --- sentences --------------------------------------------------------------------

    def subject(self, extras: list[Extra], fragment: bool = False) -> str:
        """"the man", "a lady in the photo", "a girl with a black backpack" (consuming that extra).

        A fragment ("A man wearing ...") always starts with "a"/"an".
        """
        rng = self.rng
        person = rng.choice(self.words.people[self.identity.gender])
        determiner = "a" if fragment else rng.choice(_DETERMINERS)
        subject = _with_article(person) if determiner == "a" else f"{determiner} {person}"
        if rng.random() < 0.15:
            subject += " " + rng.choice(self.words.scenes)
        modifiable = [i for i, (_, phrase) in enumerate(extras) if phrase is not None]
        if modifiable and rng.random() < 0.25:
            subject += f" with {extras.pop(rng.choice(modifiable))[1]}"
        return subject

    def main_sentence(self, clothing: list[str], extras: list[Extra]) -> str:
        """The clothing sentence, in one of several CUHK-like shapes, absorbing none, one or all extras."""
        rng = self.rng
        style = rng.random()
        if style < 0.25:  # "A man wearing a black jacket and blue jeans", "There is a man wearing ..."
            fragment = f"{self.subject(extras, fragment=True)} {rng.choice(self.words.wear_fragment)} {_join(clothing)}"
            return f"{rng.choice(self.words.openers)} {fragment}" if rng.random() < 0.3 else fragment
        subject = self.subject(extras, fragment=style < 0.35)
        predicates = [self.wear(clothing)]
        absorb = rng.random()
        if absorb < 0.25:  # one sentence for everything
            predicates += [predicate for predicate, _ in extras]
            extras.clear()
        elif absorb < 0.5 and extras:
            predicates.append(extras.pop()[0])
        return f"{subject}{' who' if style < 0.35 else ''} {_join(predicates)}"

    def sentences(self, clothing: list[str], extras: list[Extra]) -> list[str]:
        """The clothing sentence (sometimes led by a detail) plus pronoun sentences for the extras."""
        rng = self.rng
        if extras and rng.random() < 0.2:  # "A lady has long hair. She is wearing ..."
            predicate = extras.pop()[0]
            sentences = [f"{self.subject(extras)} {predicate}", f"{self.he} {self.wear(clothing)}"]
        else:
            sentences = [self.main_sentence(clothing, extras)]
        while extras:
            room = MAX_SENTENCES - len(sentences)
            take = len(extras) if room <= 1 else min(len(extras), rng.choice((1, 2, 2, 3)))
            predicates = [predicate for predicate, _ in extras[:take]]
            if self.words.also and rng.random() < 0.3:
                predicates[0] = self._also(predicates[0])
            sentences.append(f"{self.he} {_join(predicates)}")
            del extras[:take]
        return sentences

    def _also(self, predicate: str) -> str:
        """"is also carrying ...", "also has ...": the adverb goes after a leading "is"."""
        if predicate.startswith("is "):
            return f"is {self.words.also} {predicate[3:]}"
        return f"{self.words.also} {predicate}"

    def misspell(self, caption: str) -> str:
        """The caption with one word of the misspelling table typed wrong (if it has one)."""
        words = caption.split(" ")
        candidates = [i for i, word in enumerate(words) if word.rstrip(",.") in self.words.misspellings]
        if not candidates:
            return caption
        i = self.rng.choice(candidates)
        word = words[i].rstrip(",.")
        words[i] = self.words.misspellings[word] + words[i][len(word):]
        return " ".join(words)


def _compose(identity: Identity, wording: Wording, rng: random.Random, view: str | None, detail: str) -> str:
    writer = _Writer(identity, wording, rng)
    plan = _Plan(identity, wording, rng, detail)
    clothing = writer.clothing(plan)
    sentences = writer.sentences(clothing, writer.extras(plan, view))
    caption = " ".join(sentence[0].upper() + sentence[1:] + "." for sentence in sentences)
    return writer.misspell(caption) if rng.random() < MISSPELLED_SHARE else caption


def _acceptable(caption: str) -> bool:
    return MIN_WORDS <= len(tokenize(caption)) <= MAX_WORDS


def make_caption(identity: Identity, rng: random.Random, view: str | None = None,
                 wording: Wording = TRAINING) -> str:
    """A caption of ``identity`` with MIN_WORDS..MAX_WORDS words.

    Random plans are tried first; sparse identities may need every detail ("full") and
    rich ones may need only the mandatory attributes ("minimal") to fit the length range.
    """
    for detail in ["random"] * 20 + ["full"] * 10 + ["minimal"] * 10:
        caption = _compose(identity, wording, rng, view, detail)
        if _acceptable(caption):
            return caption
    raise RuntimeError(f"no caption of {MIN_WORDS}-{MAX_WORDS} words for {identity}")


def make_captions(identity: Identity, rng: random.Random, view: str | None = None,
                  wording: Wording = TRAINING) -> list[str]:
    """Two different captions of one image (CUHK-PEDES has two annotators per image)."""
    first = make_caption(identity, rng, view, wording)
    for _ in range(50):
        second = make_caption(identity, rng, view, wording)
        if second != first:
            return [first, second]
    raise RuntimeError(f"could not make two different captions for {identity}")
