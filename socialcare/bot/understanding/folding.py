"""How texts and keywords are folded before they are compared."""

from __future__ import annotations

import unicodedata

# Cyrillic letters that look like Latin ones. People mix them ("Кcell", "Bееline") —
# by accident on a Cyrillic keyboard or on purpose to dodge moderation — so both the
# text and the keywords are folded to one alphabet before they are compared.
_LOOKALIKES = str.maketrans({
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o",
    "р": "p", "с": "c", "т": "t", "у": "y", "х": "x", "і": "i", "ј": "j", "ѕ": "s",
})


def lower(text: str) -> str:
    """Return text compatibility-normalised and case-folded."""
    return unicodedata.normalize("NFKC", text).casefold()


def fold(text: str) -> str:
    """Return text in the form keywords are matched in: compatibility-normalised,
    case-folded, with Cyrillic look-alikes mapped to Latin letters.

    The look-alike step maps one letter to one letter, so a position in the folded
    text is the same position in `lower(text)`.
    """
    return lower(text).translate(_LOOKALIKES)


def fold_lowered(lowered: str) -> str:
    """Fold a text that `lower` has already been applied to."""
    return lowered.translate(_LOOKALIKES)
