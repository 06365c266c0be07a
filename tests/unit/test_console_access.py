"""Console sign-in rules that need no server: password hashes and finding a person."""

from __future__ import annotations

from socialcare.console.access import find_person, hash_password, password_matches
from tests.conftest import make_team


def test_a_password_hash_is_salted_scrypt_and_matches_only_its_password() -> None:
    first, second = hash_password("correct horse"), hash_password("correct horse")

    assert first.startswith("scrypt$16384$8$1$") and "correct horse" not in first
    assert first != second  # a new salt each time
    assert password_matches("correct horse", first)
    assert password_matches("correct horse", second)
    assert not password_matches("correct horsE", first)
    assert not password_matches("", first)


def test_a_malformed_or_foreign_hash_never_matches() -> None:
    good = hash_password("secret words")

    assert not password_matches("secret words", "")
    assert not password_matches("secret words", "md5$abc")
    assert not password_matches("secret words", good.replace("scrypt", "bcrypt", 1))
    assert not password_matches("secret words", good[:-8])


def test_a_person_is_found_by_id_or_name_in_any_case() -> None:
    team = make_team()

    assert find_person(team, "aigerim") is team.person("aigerim")
    assert find_person(team, " @Saule ") is team.person("saule")
    assert find_person(team, "NURLAN") is team.person("nurlan")
    assert find_person(team, "") is None
    assert find_person(team, "stranger") is None
