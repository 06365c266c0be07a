"""The language a mention is written in: Russian, Kazakh, English or other.

Detected with lingua (which knows Kazakh), restricted to the team's three languages
and in its low-accuracy mode: that mode keeps only trigram models (about 20 MB
resident for the three, against about 130 MB for the full models), is accurate on
texts of a few words, and takes some 30 µs a mention. The detector is built once per
process, on first use.
"""

from __future__ import annotations

import re
from functools import cache

from lingua import Language as Lingua
from lingua import LanguageDetector, LanguageDetectorBuilder

from socialcare.bot.understanding.model import Language

_LANGUAGES = {Lingua.RUSSIAN: Language.RU, Lingua.KAZAKH: Language.KK,
              Lingua.ENGLISH: Language.EN}
# What a detector cannot judge: addresses, handles, hashtags' marks and numbers.
_NOISE = re.compile(r"https?://\S+|[@#]\w+|\d+")
_LETTERS = re.compile(r"[^\W\d_]{2,}")
# Letters only Kazakh writes, in Cyrillic and in the Latin alphabets of 2018 and 2021.
_KAZAKH_LETTERS = frozenset("әғқңөұүһіǵńóúáñğşūı")
# Kazakh in Latin letters without them ("internet jok, jauap bermedi"): its most
# common words, which no English text has.
_KAZAKH_LATIN_WORDS = frozenset({
    "jok", "joq", "zhok", "jauap", "bermedi", "bermeidi", "istemeidi", "qaida", "kaida",
    "nashar", "jumys", "edim", "boldy", "bolady", "qalai", "kalai", "rakhmet", "rahmet",
    "eshkim", "shaldym", "kettim", "jaqsy", "zhaksy", "keremet",
})


@cache
def _detector() -> LanguageDetector:
    return LanguageDetectorBuilder.from_languages(*_LANGUAGES).with_low_accuracy_mode().build()


def detect(text: str) -> Language:
    """Return the language of a text; "other" when it has too few words to tell."""
    plain = _NOISE.sub(" ", text)
    words = _LETTERS.findall(plain)
    if not words:
        return Language.OTHER
    lowered = plain.casefold()
    if any(ch in _KAZAKH_LETTERS for ch in lowered):
        return Language.KK
    found = _detector().detect_language_of(plain)
    language = _LANGUAGES.get(found) if found is not None else None
    if language is Language.EN and sum(
            w.casefold() in _KAZAKH_LATIN_WORDS for w in words) >= 2:
        return Language.KK
    return language or Language.OTHER
