"""Which brand a text is about: whole-word keywords in Latin and Cyrillic, minus exclusions."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence

from socialcare.bot.model import Author
from socialcare.bot.team import Brand

# Cyrillic letters that look like Latin ones. People mix them ("Кcell", "Bееline") —
# by accident on a Cyrillic keyboard or on purpose to dodge moderation — so both the
# text and the keywords are folded to one alphabet before they are compared.
_LOOKALIKES = str.maketrans({
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o",
    "р": "p", "с": "c", "т": "t", "у": "y", "х": "x", "і": "i", "ј": "j", "ѕ": "s",
})


def fold(text: str) -> str:
    """Return text in the form keywords are matched in: compatibility-normalised,
    case-folded, with Cyrillic look-alikes mapped to Latin letters."""
    return unicodedata.normalize("NFKC", text).casefold().translate(_LOOKALIKES)


def _phrase_pattern(phrases: Iterable[str]) -> re.Pattern[str] | None:
    # Whole words: no word character may touch the phrase on either side, so that
    # "kcell" matches "#Kcell," but not "kcellular". Longest first, so that a longer
    # phrase wins over a shorter one that starts it.
    folded = sorted({fold(p).strip() for p in phrases if p.strip()}, key=len, reverse=True)
    if not folded:
        return None
    body = "|".join(r"\s+".join(re.escape(w) for w in p.split()) for p in folded)
    return re.compile(rf"(?<!\w)(?:{body})(?!\w)")


class BrandMatcher:
    """Find the brand a mention is about, and recognise the brands' own accounts."""

    def __init__(self, brands: Sequence[Brand]) -> None:
        self._brands = [
            (brand, _phrase_pattern(brand.keywords), _phrase_pattern(brand.exclusions))
            for brand in brands
        ]
        self._accounts = {
            (platform.casefold(), _account_key(handle)): brand
            for brand in brands
            for platform, handles in brand.accounts.items()
            for handle in handles
        }

    def match(self, text: str) -> Brand | None:
        """Return the brand named earliest in the text, or None if no brand is named.

        An exclusion hides only its own words: "Kcell Arena" can be excluded while
        "Kcell Arena has no 4G, Kcell fix it" still matches.
        """
        folded = fold(text)
        best: tuple[int, Brand] | None = None
        for brand, keywords, exclusions in self._brands:
            if keywords is None:
                continue
            visible = exclusions.sub(" ", folded) if exclusions else folded
            found = keywords.search(visible)
            if found and (best is None or found.start() < best[0]):
                best = (found.start(), brand)
        return best[1] if best else None

    def own_account(self, platform: str, author: Author) -> Brand | None:
        """Return the brand whose account wrote this, or None for a customer."""
        for key in (author.id, author.handle):
            if key:
                brand = self._accounts.get((platform.casefold(), _account_key(key)))
                if brand is not None:
                    return brand
        return None


def _account_key(handle: str) -> str:
    return handle.strip().lstrip("@").casefold()
