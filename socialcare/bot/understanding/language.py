"""The language a mention is written in: Russian, Kazakh, English or other.

Detected with lingua (which knows Kazakh), restricted to the team's three languages
and in its low-accuracy mode: that mode keeps only trigram models (some 9 MB resident
for the three, against about 130 MB for the full models: the embedded default's RSS
budget is 200 MB), is right on every corpus text of five words or more, and takes
some 40-80 µs a text. lingua holds the GIL while it works, so it runs on the caller's
thread (the pipeline reads a batch in slices, yielding to the event loop between
them). The detector is built once per process, on first use.
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
_CYRILLIC = re.compile(r"[\u0400-\u04ff]")
_WORDS = 5
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
    """Return the language of a text; "other" when it has no words to tell by.

    The alphabet decides what it can: letters only Kazakh writes make it Kazakh; no
    Cyrillic letter at all makes it English (or Kazakh in Latin letters, by its common
    words) — lingua restricted to the three would say no more. Cyrillic texts go to
    lingua, with their first words only: its time grows with the length, and a dozen
    words tell Russian from Kazakh as well as a page.
    """
    plain = _NOISE.sub(" ", text)
    words = _LETTERS.findall(plain.casefold())
    if not words:
        return Language.OTHER
    lowered = " ".join(words)
    if not _KAZAKH_LETTERS.isdisjoint(lowered):
        return Language.KK
    if _CYRILLIC.search(lowered) is None:
        if len(_KAZAKH_LATIN_WORDS.intersection(words)) >= 2:
            return Language.KK
        return Language.EN
    found = _detector().detect_language_of(" ".join(words[:_WORDS]))
    return _LANGUAGES.get(found, Language.OTHER) if found is not None else Language.OTHER
