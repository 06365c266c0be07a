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
from collections.abc import Callable, Sequence
from functools import cache

from lingua import Language as Lingua
from lingua import LanguageDetector, LanguageDetectorBuilder

from socialcare.bot.understanding.model import Language

_LANGUAGES = {Lingua.RUSSIAN: Language.RU, Lingua.KAZAKH: Language.KK,
              Lingua.ENGLISH: Language.EN}
# What a detector cannot judge: addresses, handles, hashtags' marks and numbers.
_NOISE = re.compile(r"https?://\S+|[@#]\w+|\d+")
_MARKED = re.compile(r"https?://\S+|[@#]\w+")
_MARKED_UNTAGGED = re.compile(r"https?://\S+|@\w+")
_WORDS_OF = re.compile(r"[^\W\d_]+")
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


# Russian words that are not Kazakh ones: a Cyrillic text without Kazakh letters with
# one of them is Russian, and lingua need not be asked (it takes most of a mention's
# reading time).
_RUSSIAN_WORDS = frozenset({
    "и", "в", "на", "что", "за", "я", "по", "как", "это", "нет", "опять", "уже", "все", "всё",
    "вы", "мы", "она", "они", "так", "если", "или", "но", "же", "бы", "ли", "только", "когда",
    "почему", "где", "до", "из", "для", "при", "со", "без", "вас", "вам", "мне", "меня", "с",
    "к", "об", "ни", "вот", "еще", "ещё", "очень", "вообще", "который", "которые", "сегодня",
    "теперь", "снова",
})


# What a word tells of its language, as bits: a word of more than one letter; a
# letter only Kazakh writes; a Cyrillic letter; a Russian word no Kazakh text has; a
# common word of Kazakh in Latin letters.
LONG, KAZAKH, CYRILLIC, RUSSIAN, KAZAKH_LATIN = 1, 2, 4, 8, 16


@cache
def _detector() -> LanguageDetector:
    return LanguageDetectorBuilder.from_languages(*_LANGUAGES).with_low_accuracy_mode().build()


def signs(word: str) -> int:
    """Return what a lower-case word of letters tells of its language (the bits above)."""
    found = LONG if len(word) > 1 else 0
    if not _KAZAKH_LETTERS.isdisjoint(word):
        found |= KAZAKH
    if _CYRILLIC.search(word) is not None:
        found |= CYRILLIC
    if word in _RUSSIAN_WORDS:
        found |= RUSSIAN
    if word in _KAZAKH_LATIN_WORDS:
        found |= KAZAKH_LATIN
    return found


def words_of(text: str) -> tuple[str, ...]:
    """Return the words of a lower-case piece of text, letters only."""
    return (text,) if text.isalpha() else tuple(_WORDS_OF.findall(text))


def noise(text: str, *, hashtags: bool = True) -> list[tuple[int, int]]:
    """Return where a lower-case text has addresses, handles and (unless the caller has
    them already) hashtags, which tell nothing of its language (numbers are no words:
    `words_of` leaves them out)."""
    if "@" not in text and "://" not in text and (not hashtags or "#" not in text):
        return []
    return [m.span() for m in (_MARKED if hashtags else _MARKED_UNTAGGED).finditer(text)]


def detect(text: str) -> Language:
    """Return the language of a text; "other" when it has no words to tell by."""
    words = words_of(_NOISE.sub(" ", text).casefold())
    found = 0
    for word in words:
        found |= signs(word)
    return decide(found, lambda: words)


def decide(found: int, words: Callable[[], Sequence[str]]) -> Language:
    """Return the language of words whose `signs` together are `found`; "other" when
    they tell nothing. `words` returns them (lower-case, letters only, in the text's
    order) for the few texts their signs do not settle.

    The alphabet decides what it can: letters only Kazakh writes make it Kazakh; no
    Cyrillic letter at all makes it English (or Kazakh in Latin letters, by its common
    words) — lingua restricted to the three would say no more; a Russian word no
    Kazakh text has makes it Russian. The other Cyrillic texts go to lingua, with their
    first words only: its time grows with the length, and five words tell Russian from
    Kazakh on every corpus text.
    """
    if not found & LONG:
        return Language.OTHER
    if found & KAZAKH:
        return Language.KK
    if not found & CYRILLIC:
        if found & KAZAKH_LATIN and len(_KAZAKH_LATIN_WORDS.intersection(words())) >= 2:
            return Language.KK
        return Language.EN
    if found & RUSSIAN:
        return Language.RU
    found_language = _detector().detect_language_of(
        " ".join([w for w in words() if len(w) > 1][:_WORDS]))
    return _LANGUAGES.get(found_language, Language.OTHER) if found_language is not None \
        else Language.OTHER
