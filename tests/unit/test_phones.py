"""Phone numbers: read in the ways customers write them, masked on shared cards."""

from __future__ import annotations

import pytest

from socialcare.bot.answers.phones import (
    mask_phones,
    masked_phone,
    normalize_phone,
    pretty_phone,
    shared_excerpt,
)


@pytest.mark.parametrize("written", [
    "+7 777 123 45 12", "+7 (777) 123-45-12", "87771234512", "8 777 123 45 12",
    "+77771234512", "7-777-123-45-12",
])
def test_a_kazakh_number_is_read_however_it_is_written(written: str) -> None:
    assert normalize_phone(written) == "+77771234512"
    assert pretty_phone("+77771234512") == "+7 777 123 45 12"


@pytest.mark.parametrize("junk", ["", "12", "call me", "+7 777 123", "1234567890123456789",
                                  "+7 777 123 45 12 and more", "order 2026-11-30"])
def test_what_is_not_one_number_is_refused(junk: str) -> None:
    assert normalize_phone(junk) is None


def test_numbers_inside_a_customers_text_are_masked_and_the_rest_is_kept() -> None:
    text = ("Kcell, call me at 8 (777) 123-45-12 or +7 701 555 66 34, "
            "order 123456, since 2026-11-30")
    assert mask_phones(text) == ("Kcell, call me at +7 7** *** **12 or +7 7** *** **34, "
                                 "order 123456, since 2026-11-30")
    assert masked_phone("+77771234512") == "+7 7** *** **12"
    assert masked_phone("+4915112345678") == "+4 9*********78"


def test_a_shared_excerpt_masks_the_number_before_it_cuts_the_text() -> None:
    text = "No signal.\n\nCall me:   8 (777) 123-45-12, after six"
    # Cut inside the number: the digits kept must not be the customer's.
    cut = len("No signal. Call me: +7 7** ***")
    assert shared_excerpt(text) == "No signal. Call me: +7 7** *** **12, after six"
    assert shared_excerpt(text, cut) == "No signal. Call me: +7 7** ***…"
    assert shared_excerpt(text, 1000) == shared_excerpt(text)
    assert shared_excerpt(None, 10) == ""
