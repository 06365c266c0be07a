"""The labelled corpus (mentions.txt) as data, and the figures measured on it."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

CORPUS = Path(__file__).with_name("mentions.txt")
BRAND_GROUPS = ("plain", "ru_forms", "kk_forms", "tags")
SILENT_GROUPS = ("near_miss", "exclusion")


@dataclass(frozen=True)
class Labelled:
    """One mention of the corpus and what a reader knows of it."""

    held_out: bool
    group: str
    brand: str | None
    language: str
    topics: frozenset[str]
    places: frozenset[str]
    text: str

    @property
    def words(self) -> int:
        """Return how many words the text has."""
        return len(self.text.split())


def _names(field: str) -> frozenset[str]:
    return frozenset() if field == "-" else frozenset(n.strip() for n in field.split(","))


def load() -> list[Labelled]:
    """Return the corpus, in file order."""
    rows = []
    for line in CORPUS.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        split, group, brand, language, topics, places, text = line.split(" | ", 6)
        rows.append(Labelled(split.strip() == "h", group.strip(),
                             None if brand.strip() == "-" else brand.strip(),
                             language.strip(), _names(topics.strip()), _names(places.strip()),
                             text))
    return rows


@dataclass(frozen=True)
class Score:
    """Recall and precision of a labelling."""

    found: int  # true positives
    expected: int  # labelled positives
    given: int  # predicted positives

    @property
    def recall(self) -> float:
        return self.found / self.expected if self.expected else 1.0

    @property
    def precision(self) -> float:
        return self.found / self.given if self.given else 1.0

    def __str__(self) -> str:
        return (f"recall {self.recall:.3f} ({self.found}/{self.expected})  "
                f"precision {self.precision:.3f} ({self.found}/{self.given})")


def score_brands(rows: Iterable[Labelled], read: Callable[[str], str | None]) -> Score:
    """Score the brand each text is read as against the labels."""
    found = expected = given = 0
    for row in rows:
        brand = read(row.text)
        expected += row.brand is not None
        given += brand is not None
        found += brand is not None and brand == row.brand
    return Score(found, expected, given)


def score_sets(rows: Iterable[Labelled], labels: Callable[[Labelled], frozenset[str]],
               read: Callable[[str], Iterable[str]]) -> Score:
    """Score sets of names (topics, places) per text against the labels."""
    found = expected = given = 0
    for row in rows:
        truth, got = labels(row), set(read(row.text))
        found += len(truth & got)
        expected += len(truth)
        given += len(got)
    return Score(found, expected, given)
