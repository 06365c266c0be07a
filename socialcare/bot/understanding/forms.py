"""Word forms: which endings may follow a keyword in Russian, Kazakh and English.

The grammar is data, not a stemmer: a keyword matches a longer word only when what
follows it is one of the languages' real endings, so "Кселла", "Кселлдегілерге" and
"Kcell's" match "Kcell" while "Кселлофан", "Активный" and "active" do not.

- Russian: case and number endings, chosen by how the keyword ends (a consonant,
  -а, -я, -ь, -й, -о, -ие, an adjective's -ый/-ий/-ой), which the ending replaces.
- Kazakh: a chain of suffixes glued one after another — plural, possessive, case, the
  locative's -ғы/-гі and again plural and case — each in all its vowel-harmony and
  voicing variants, since a Latin brand name has no harmony of its own. The first
  suffix depends on whether the keyword ends in a vowel: after a consonant there is no
  "-ны"/"-ның" (so "Активны" is not "Актив").
- Kazakh written in Latin letters: the same chain, transliterated in the spellings
  people use (2021 and 2018 alphabets, and plain ASCII: ğ/gh/g, ñ/ń/ng, ı/y).
- English: "s", "es" (the apostrophe is a separator, so "Kcell's" is "Kcell" + "s").

Which set applies is decided by the alphabet of what follows the keyword: Cyrillic
endings after any stem ("Kcellдің", "Kcell'а"), Latin endings only in Latin letters,
so "active" is not "activ" + the Russian "е".
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache

from socialcare.bot.understanding.folding import fold

# Letters people write between a word and its ending: "Kcell-ге", "Kcell'а", "Kcell’ден".
GLUE = frozenset("-'’ʼ`")

# Russian: keyword ending → the endings that replace it (the first is the ending
# itself). A keyword ending in any other consonant takes the consonant set.
_RUSSIAN: Mapping[str, str] = {
    "": "а у ом ем е ы и ов ев ей ам ами ах ям ями ях ю я",
    "а": "а ы и е у ой ою ам ами ах",
    "я": "я и е ю ей ею ям ями ях й ь",
    "ь": "ь и ью ей ям ями ях я ю ем е",
    "й": "й я ю ем е и ев ям ями ях",
    "о": "о а у ом е ы ам ами ах",
    "ие": "ие ия ию ием ии ий иям иями иях",
    "ый": "ый ого ому ым ом ая ой ую ое ые ых ыми",
    "ий": "ий его ему им ем ая яя ей ую юю ое ее ие ые их ими ого ому ой",
    "ой": "ой ого ому ым ом ая ую ое ые ых ыми",
}
_VOWELS = frozenset("аәеёиоөуұүыіэюяaeiouyäöüıáóúé")

# Kazakh: a small automaton. Each state lists (suffixes, next state); a word may end
# in any state. Suffixes come in every harmony (а/е, ы/і) and voicing (д/т, ғ/қ, г/к,
# б/п/м) variant.
_PLURAL = "лар лер дар дер тар тер"
_POSSESSIVE_12_CONS = "ым ім ың ің ымыз іміз ыңыз іңіз"
_POSSESSIVE_12_VOWEL = "м ң мыз міз ңыз ңіз"
_CASES_CONS = ("дың дің тың тің ды ді ты ті ға ге қа ке дан ден тан тен мен бен пен "
               "ша ше дай дей тай тей менен бенен пенен")
_CASES_VOWEL = "ның нің ны ні ға ге дан ден нан нен мен ша ше дай дей"
_KAZAKH: Mapping[str, tuple[tuple[str, str], ...]] = {
    "vowel": (
        (_PLURAL, "plural"), ("сы сі", "poss3"), (_POSSESSIVE_12_VOWEL, "poss12"),
        (_CASES_VOWEL, "end"), ("да де", "locative"), ("сыз сіз", "end"),
    ),
    "consonant": (
        (_PLURAL, "plural"), ("ы і", "poss3"), (_POSSESSIVE_12_CONS, "poss12"),
        (_CASES_CONS, "end"), ("да де та те", "locative"), ("сыз сіз", "end"),
    ),
    "plural": (
        ("ы і", "poss3"), (_POSSESSIVE_12_CONS, "poss12"), (_CASES_CONS, "end"),
        ("да де", "locative"),
    ),
    "poss3": (("ның нің н на не нан нен мен", "end"), ("нда нде", "locative")),
    "poss12": (("а е ның нің ды ді нан нен дан ден мен", "end"), ("да де", "locative")),
    "locative": (("ғы гі қы кі", "attributive"),),
    "attributive": ((_PLURAL, "plural"), (_CASES_VOWEL, "end")),
    "end": (),
}

# How Kazakh letters are written in Latin letters, in the spellings people use.
_LATIN: Mapping[str, tuple[str, ...]] = {
    "а": ("a",), "ә": ("ä", "a", "á"), "е": ("e",), "ы": ("y", "ı"), "і": ("i",),
    "о": ("o",), "ө": ("ö", "o", "ó"), "ұ": ("u", "ū"), "ү": ("ü", "u", "ú"),
    "д": ("d",), "т": ("t",), "л": ("l",), "р": ("r",), "м": ("m",), "н": ("n",),
    "б": ("b",), "п": ("p",), "с": ("s",), "з": ("z",), "ш": ("sh", "ş"),
    "ң": ("ñ", "ń", "ng", "n"), "ғ": ("ğ", "ǵ", "gh", "g"), "қ": ("q", "k"),
    "г": ("g",), "к": ("k",), "й": ("i", "y", "ı"),
}
_ENGLISH = ("s", "es")


def _latin(suffix: str) -> set[str]:
    return {"".join(parts) for parts in itertools.product(*(_LATIN[ch] for ch in suffix))}


@dataclass(frozen=True)
class Grammar:
    """The endings of the three languages, folded the way texts are folded."""

    russian: Mapping[str, frozenset[str]]
    kazakh_cyrillic: Mapping[str, tuple[tuple[frozenset[str], str], ...]]
    kazakh_latin: Mapping[str, tuple[tuple[frozenset[str], str], ...]]
    english: frozenset[str]


@cache
def grammar() -> Grammar:
    """Return the grammar, every suffix folded the way texts are (`folding.fold`)."""

    def folded(words: Iterable[str]) -> frozenset[str]:
        return frozenset(fold(w) for w in words)

    return Grammar(
        russian={ending: folded(endings.split()) for ending, endings in _RUSSIAN.items()},
        kazakh_cyrillic={
            state: tuple((folded(s.split()), nxt) for s, nxt in edges)
            for state, edges in _KAZAKH.items()
        },
        kazakh_latin={
            state: tuple(
                (folded(v for suffix in s.split() for v in _latin(suffix)), nxt)
                for s, nxt in edges
            )
            for state, edges in _KAZAKH.items()
        },
        english=folded(_ENGLISH),
    )


def russian_class(word: str) -> str | None:
    """Return the Russian ending class of a (lower-case, unfolded) keyword word: the
    ending its forms replace ("" for a consonant), or None if it does not decline."""
    for ending in ("ие", "ый", "ий", "ой", "а", "я", "ь", "й", "о"):
        if word.endswith(ending) and len(word) > len(ending) + 1:
            return ending
    last = word[-1:]
    return "" if last.isalpha() and last not in _VOWELS else None


def kazakh_start(word: str) -> str:
    """Return the Kazakh automaton's start state for a keyword word."""
    return "vowel" if word[-1:] in _VOWELS else "consonant"


def chain_fits(rest: str, edges: Mapping[str, tuple[tuple[frozenset[str], str], ...]],
               state: str) -> bool:
    """Tell whether `rest` is a whole chain of suffixes from `state` of the automaton."""
    if not rest:
        return True
    for suffixes, nxt in edges[state]:
        for size in range(1, min(len(rest), 6) + 1):
            if rest[:size] in suffixes and chain_fits(rest[size:], edges, nxt):
                return True
    return False


def is_cyrillic(text: str) -> bool:
    """Tell whether every letter of a (lower-case) text is Cyrillic."""
    return all("\u0400" <= ch <= "\u04ff" for ch in text if ch.isalpha())


def is_latin(text: str) -> bool:
    """Tell whether every letter of a (lower-case) text is Latin."""
    return all(ch.isascii() or "\u00c0" <= ch <= "\u024f" for ch in text if ch.isalpha())
