"""Phone numbers in texts: found, written one way, and masked where many people look.

A customer's number is for the agent and the call centre alone: on every shared card
(the team's channels, the console) it shows as +7 7** *** **12, also inside the
customer's own text. Numbers are written with a country code; a Kazakh or Russian
number written the national way (8 777 …) is read as +7.
"""

from __future__ import annotations

import re

# A run of 10–15 digits, optionally led by "+", with spaces, dashes, dots or brackets
# between them: "+7 (777) 123-45-12", "87771234512", "+7 777 123 45 12".
_PHONE = re.compile(r"(?<![\w+])\+?\d(?:[\s\-.()]{0,2}\d){9,14}(?!\w)")
MIN_DIGITS, MAX_DIGITS = 11, 15


def _digits(found: str) -> str | None:
    digits = re.sub(r"\D", "", found)
    if len(digits) == 11 and digits[0] == "8" and not found.lstrip().startswith("+"):
        digits = "7" + digits[1:]
    if not MIN_DIGITS <= len(digits) <= MAX_DIGITS:
        return None
    return digits


def normalize_phone(text: str) -> str | None:
    """Return the one phone number the text is, as +digits; None if it is not one."""
    found = _PHONE.fullmatch(text.strip())
    digits = None if found is None else _digits(found[0])
    return None if digits is None else "+" + digits


def pretty_phone(phone: str) -> str:
    """Write a +digits number for people: +7 777 123 45 12."""
    digits = phone.removeprefix("+")
    if len(digits) == 11 and digits[0] == "7":
        return f"+7 {digits[1:4]} {digits[4:7]} {digits[7:9]} {digits[9:]}"
    return "+" + digits


def masked_phone(phone: str) -> str:
    """Mask a +digits number: the country code, the operator code's first digit and the
    last two stay (+7 7** *** **12)."""
    digits = phone.removeprefix("+")
    if len(digits) == 11 and digits[0] == "7":
        return f"+7 {digits[1]}** *** **{digits[9:]}"
    return f"+{digits[0]} {digits[1]}{'*' * (len(digits) - 4)}{digits[-2:]}"


def mask_phones(text: str) -> str:
    """Mask every phone number in a text."""
    def masked(found: re.Match[str]) -> str:
        digits = _digits(found[0])
        return found[0] if digits is None else masked_phone("+" + digits)

    return _PHONE.sub(masked, text)


def shared_excerpt(text: str | None, limit: int | None = None) -> str:
    """Return a customer's words as a shared surface shows them (the wallboard, the
    incident message, escalation cards, /queue): phone numbers masked, on one line, at
    most `limit` characters and "…". Masked before it is cut, so that a number cut short
    cannot slip past the mask with the digits it keeps."""
    words = " ".join(mask_phones(text or "").split())
    if limit is None or len(words) <= limit:
        return words
    return words[:limit] + "…"
