"""The matcher on the labelled corpus (tests/corpus/mentions.txt) with the shipped
config.example.toml: brand recall and precision per group, the held-out third on its
own, language accuracy, topics and places. Run with -s to see the table."""

from __future__ import annotations

from pathlib import Path

import pytest

from socialcare.bot.understanding.matcher import Matcher
from socialcare.settings import load_team
from tests.corpus.labelled import (
    BRAND_GROUPS,
    SILENT_GROUPS,
    Labelled,
    Score,
    load,
    score_brands,
    score_sets,
)

ROOT = Path(__file__).resolve().parents[2]
ROWS = load()


@pytest.fixture(scope="module")
def readings() -> dict[str, object]:
    team = load_team(ROOT / "config.example.toml")
    matcher = Matcher(team.brands, urgent=team.urgent_keywords, topics=team.topics,
                      places=team.places)
    return {row.text: matcher.read(row.text, language=True) for row in ROWS}


def _brand(readings: dict[str, object]):  # type: ignore[no-untyped-def]
    def read(text: str) -> str | None:
        brand = readings[text].brand  # type: ignore[attr-defined]
        return brand.name if brand else None
    return read


def _print(title: str, score: Score) -> None:
    print(f"{title:<28} {score}")


def test_the_corpus_is_large_mixed_and_a_third_is_held_out() -> None:
    assert len(ROWS) >= 300
    assert {r.language for r in ROWS} >= {"ru", "kk", "en"}
    for group in {r.group for r in ROWS}:
        rows = [r for r in ROWS if r.group == group]
        assert abs(sum(r.held_out for r in rows) - len(rows) / 3) <= 1, group


def test_brands_are_found_in_every_group_and_never_in_near_misses_or_exclusions(
    readings: dict[str, object],
) -> None:
    read = _brand(readings)
    print()
    for group in BRAND_GROUPS:
        score = score_brands([r for r in ROWS if r.group == group], read)
        _print(f"brand · {group}", score)
        assert score.recall >= 0.98, group
    for group in SILENT_GROUPS:
        wrong = [r.text for r in ROWS if r.group == group and read(r.text) is not None]
        print(f"{'brand · ' + group:<28} {len(wrong)} matched")
        assert not wrong, group
    overall = score_brands(ROWS, read)
    _print("brand · all", overall)
    assert overall.recall >= 0.98 and overall.precision >= 0.98


def test_the_held_out_third_scores_within_two_points_of_the_rest(
    readings: dict[str, object],
) -> None:
    read = _brand(readings)
    held = score_brands([r for r in ROWS if r.held_out], read)
    tuned = score_brands([r for r in ROWS if not r.held_out], read)
    print()
    _print("brand · held out", held)
    _print("brand · tuned on", tuned)
    assert held.recall >= tuned.recall - 0.02
    assert held.precision >= tuned.precision - 0.02
    assert held.recall >= 0.98 and held.precision >= 0.98


def _language_accuracy(rows: list[Labelled], readings: dict[str, object]) -> float:
    right = sum(readings[r.text].language == r.language for r in rows)  # type: ignore[attr-defined]
    return right / len(rows)


def test_the_language_is_right_on_texts_of_five_words_or_more(
    readings: dict[str, object],
) -> None:
    long = [r for r in ROWS if r.words >= 5]
    accuracy = _language_accuracy(long, readings)
    held = _language_accuracy([r for r in long if r.held_out], readings)
    print(f"\nlanguage · ≥ 5 words: {accuracy:.3f} of {len(long)} (held out {held:.3f}); "
          f"all texts: {_language_accuracy(ROWS, readings):.3f}")
    assert accuracy >= 0.95 and held >= 0.95


@pytest.mark.parametrize(("what", "target_recall", "target_precision"),
                         [("topics", 0.8, 0.9), ("places", 0.9, 0.9)])
def test_topics_and_places_are_read_well_enough(
    readings: dict[str, object], what: str, target_recall: float, target_precision: float,
) -> None:
    def labels(row: Labelled) -> frozenset[str]:
        return row.topics if what == "topics" else row.places

    def read(text: str) -> tuple[str, ...]:
        return getattr(readings[text], what)  # type: ignore[no-any-return]

    overall = score_sets(ROWS, labels, read)
    held = score_sets([r for r in ROWS if r.held_out], labels, read)
    print()
    _print(f"{what} · all", overall)
    _print(f"{what} · held out", held)
    assert overall.recall >= target_recall and overall.precision >= target_precision
    assert held.recall >= target_recall and held.precision >= target_precision


def test_a_matcher_that_has_read_every_text_reads_each_as_a_new_one_does(
        readings: dict[str, object]) -> None:
    # The matcher keeps what it worked out of each word (its fits, its language signs);
    # what a word's neighbours say (a glued ending, a phrase, a brand name around it)
    # must not stick to it. Read the corpus forwards, then backwards, each time with a
    # matcher that has seen every text, and compare with a fresh matcher's first reading.
    team = load_team(ROOT / "config.example.toml")
    seasoned = Matcher(team.brands, urgent=team.urgent_keywords, topics=team.topics,
                       places=team.places)
    for row in [*ROWS, *reversed(ROWS)]:
        seasoned.read(row.text, language=True)
    for row in reversed(ROWS):
        fresh = Matcher(team.brands, urgent=team.urgent_keywords, topics=team.topics,
                        places=team.places)
        assert seasoned.read(row.text, language=True) == readings[row.text] \
            == fresh.read(row.text, language=True), row.text
