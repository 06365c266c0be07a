"""Dates written in words, as forums, portals and feeds write them.

"25 ноября 2026 10:00", "вчера в 14:30", "2 сағат бұрын", "5 minutes ago": read with
dateparser in Russian, Kazakh and English, relative to the poll's time, and in the
source's timezone when the text names none. dateparser reads most Kazakh already;
what it misses (number words, a unit without a number, case endings of month names,
"сағат" before a clock time, a few set phrases) is spelled here as data — tables of
words and what they mean in a form dateparser reads — not as parsing code of our own.

It costs about a millisecond a date (and a tenth of a second to load its language data
the first time): call it from a worker thread, never on the event loop, for more than a
handful of dates. Results are cached per text, timezone and minute.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

LANGUAGES = ("ru", "kk", "en")
# Longer texts are not dates; dateparser would only spend time on them.
MAX_LENGTH = 120

# Set phrases dateparser does not know, each with one it reads that means the same.
PHRASES = {
    "жаңа ғана": "қазір",  # just now
    "дәл қазір": "қазір",  # right now
    "алдыңғы күні": "2 күн бұрын",  # the day before yesterday (as "позавчера" is read)
    "былтыр": "1 жыл бұрын",  # last year
    "только что": "сейчас",
}
# Kazakh number words, as digits.
KK_NUMBERS = {
    "бір": "1", "екі": "2", "үш": "3", "төрт": "4", "бес": "5", "алты": "6",
    "жеті": "7", "сегіз": "8", "тоғыз": "9", "он": "10", "он бес": "15",
    "жиырма": "20", "отыз": "30", "қырық": "40", "елу": "50",
}
# Kazakh units of time: "сағат бұрын" (with no number) is one hour ago.
KK_UNITS = ("секунд", "минут", "сағат", "күн", "апта", "ай", "жыл")
# Kazakh month names take case endings ("25 қарашада", "қарашаның 25-і"): the bare name
# is what dateparser reads.
KK_MONTHS = ("қаңтар", "ақпан", "наурыз", "сәуір", "мамыр", "маусым", "шілде", "тамыз",
             "қыркүйек", "қазан", "қараша", "желтоқсан")
KK_ENDINGS = ("ның", "нің", "дың", "дің", "тың", "тің", "да", "де", "та", "те", "сы", "сі",
              "ы", "і")
# "сағат 14:30" is "at 14:30" (сағат: hour, o'clock).
KK_AT = "сағат"


def _word(phrase: str) -> str:
    return rf"(?<!\w){re.escape(phrase)}(?!\w)"


def _rules() -> list[tuple[re.Pattern[str], str]]:
    """The tables above as substitutions, longest phrases first."""
    rules = [(re.compile(_word(p)), meaning)
             for p, meaning in sorted(PHRASES.items(), key=lambda kv: -len(kv[0]))]
    rules += [(re.compile(_word(w) + r"(?=\s)"), digits)
              for w, digits in sorted(KK_NUMBERS.items(), key=lambda kv: -len(kv[0]))]
    units = "|".join(KK_UNITS)
    rules.append((re.compile(rf"(?<![\w\d]\s)(?<![\w\d])({units})\s+бұрын(?!\w)"), r"1 \1 бұрын"))
    months, endings = "|".join(KK_MONTHS), "|".join(KK_ENDINGS)
    rules.append((re.compile(rf"(?<!\w)({months})(?:{endings})(?!\w)"), r"\1"))
    rules.append((re.compile(rf"(?<!\w)(\d{{1,2}})-(?:{endings})(?!\w)"), r"\1"))
    rules.append((re.compile(_word(KK_AT) + r"\s+(?=\d{1,2}[:.]\d{2})"), ""))
    return rules


_RULES = _rules()


def spelled(text: str) -> str:
    """Return the text with the phrases dateparser misses put in words it reads."""
    text = " ".join(text.casefold().split())
    for pattern, meaning in _RULES:
        text = pattern.sub(meaning, text)
    return text


def read_date(text: str, *, zone: str, now: datetime) -> datetime | None:
    """Return the instant a date in words means (UTC), or None if it says no date.

    Relative dates count back from `now`; a date that names no timezone or offset is
    in `zone` (an IANA name). CPU-bound: call it off the event loop.
    """
    text = text.strip()
    if not text or len(text) > MAX_LENGTH:
        return None
    local = now.astimezone(ZoneInfo(zone)).replace(second=0, microsecond=0, tzinfo=None)
    return _read(spelled(text), zone, local)


@lru_cache(maxsize=4096)
def _read(text: str, zone: str, base: datetime) -> datetime | None:
    from dateparser.date import DateDataParser  # loads its language data: not at import

    parser = DateDataParser(languages=list(LANGUAGES), settings={
        "TIMEZONE": zone,
        "RETURN_AS_TIMEZONE_AWARE": True,
        "RELATIVE_BASE": base,
        "PREFER_DATES_FROM": "past",
    })
    try:
        found = parser.get_date_data(text).date_obj
    except (ValueError, OverflowError):
        return None
    if found is None or found.tzinfo is None:
        return None
    return found.astimezone(UTC)
