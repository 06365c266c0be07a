"""Brand matching: whole words, any case, Latin and Cyrillic, exclusions."""

from __future__ import annotations

import pytest

from socialcare.bot.brands import BrandMatcher
from socialcare.bot.model import Author
from socialcare.bot.team import Brand

KCELL = Brand(
    name="Kcell", keywords=("Kcell", "Кселл", "Кейселл"), exclusions=("Kcell Arena",),
    accounts={"instagram": ("@kcell_kz",), "vk": ("12345",)},
)
ACTIV = Brand(name="activ", keywords=("activ", "Актив Казахстан"))
matcher = BrandMatcher([KCELL, ACTIV])


@pytest.mark.parametrize(
    ("text", "brand"),
    [
        ("Kcell, why no 4G?", "Kcell"),
        ("KCELL!!!", "Kcell"),
        ("#kcell is down", "Kcell"),
        ("@kcell help", "Kcell"),
        ("у Кселл опять нет связи", "Kcell"),
        ("КСЕЛЛ верните деньги", "Kcell"),
        ("Кcell (Cyrillic К, Latin cell)", "Kcell"),  # mixed alphabets
        ("Kсеll (Cyrillic с and е)", "Kcell"),
        ("кейселл не ловит", "Kcell"),
        ("Актив  Казахстан списал деньги", "activ"),  # phrase across two spaces
        ("activ then Kcell", "activ"),  # the brand named first wins
        ("kcellular phones", None),  # not a whole word
        ("interactive", None),
        ("Kcell Arena concert tonight", None),  # excluded phrase
        ("Kcell Arena has no 4G, Kcell fix it", "Kcell"),  # excluded words only
        ("nothing here", None),
    ],
)
def test_a_brand_is_matched_as_a_whole_word(text: str, brand: str | None) -> None:
    found = matcher.match(text)
    assert (found.name if found else None) == brand


@pytest.mark.parametrize(
    ("platform", "author", "own"),
    [
        ("instagram", Author(handle="@kcell_kz"), True),
        ("Instagram", Author(handle="KCELL_KZ"), True),
        ("vk", Author(id="12345"), True),
        ("vk", Author(handle="@kcell_kz"), False),  # another platform's account
        ("instagram", Author(handle="@aigerim"), False),
    ],
)
def test_the_brands_own_accounts_are_recognised_per_platform(
    platform: str, author: Author, own: bool
) -> None:
    assert (matcher.own_account(platform, author) is not None) == own
