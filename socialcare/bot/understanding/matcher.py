"""One matcher for every word list of the team: brands, exclusions, urgent words,
topics and places, compiled once and run in one pass over a text.

A keyword matches a word of the text when the word is the keyword, or the keyword
followed by one of its word forms' endings (`forms`), glued or after a hyphen or an
apostrophe. A keyword of several words matches them in a row, its last word in its
forms ("Актив Казахстана"). A hashtag matches a keyword it is, or starts with
("#kcell", "#кселлкз", "#KcellПозор"), and a tagged "@account" of a brand is a mention
of that brand. An exclusion hides the brand keywords inside it, in its forms too
("в Kcell Arena", "Kcell Arena-да").

What depends on a word alone (the word folded, the keywords it is or begins, what it
tells of the language) is worked out once and kept, so that reading a text is mostly
one look-up a word; what depends on its neighbours is looked at in place.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import NamedTuple

from socialcare.bot.model import Author
from socialcare.bot.understanding import forms
from socialcare.bot.understanding import language as languages
from socialcare.bot.understanding.folding import fold, fold_lowered
from socialcare.bot.understanding.model import Brand, Language, Place, Reading, Topic

_WORD = re.compile(r"[^\W_]+")
_HASHTAG = re.compile(r"#(\w+)")
_ACCOUNT = re.compile(r"@([\w.]*\w)")
_HEAD = 3
# How many words a matcher keeps worked out: a stream's words repeat (Zipf's law), so
# most of a text's words are known. 20,000 words take some 6 MB.
_KNOWN_WORDS = 20_000
_CONSONANTS = frozenset("бвгджзйклмнпрстфхцчшщғқңһbcdfghjklmnpqrstvwxz")
# After a keyword in a hashtag, these start a longer word rather than a second one
# ("#активныйотдых" is not "#актив" + "ныйотдых").
_DERIVING = tuple(fold(s) for s in ("н", "ск", "ств", "ц"))


class Kind(StrEnum):
    """What a keyword stands for."""

    BRAND = "brand"
    EXCLUSION = "exclusion"
    URGENT = "urgent"
    TOPIC = "topic"
    PLACE = "place"


# The kinds as plain names: an enum member's look-up takes some 0.5 µs on Python 3.11,
# a global's some 30 ns, and the reading loop asks a few times a hit.
_BRAND, _EXCLUSION, _URGENT, _TOPIC, _PLACE = (
    Kind.BRAND, Kind.EXCLUSION, Kind.URGENT, Kind.TOPIC, Kind.PLACE)


class _Fit(Enum):
    """How a keyword fits a word taken alone."""

    WORD = 1  # the word is the keyword in one of its forms
    GLUE = 2  # the word is the keyword as written: an ending may follow after "-" or "'"
    PHRASE = 3  # the word starts a keyword of several words


@dataclass(frozen=True, eq=False)
class _Keyword:
    kind: Kind
    label: int  # the brand's, topic's or place's position in the config
    words: tuple[str, ...]  # folded
    last: str  # the last word, lower-case and unfolded (its alphabet and ending)
    exact: bool
    prefix: bool
    stem: str  # what Russian endings attach to (folded): "астан" of "Астана"
    russian: str | None  # the Russian ending class; None: no Russian endings
    kazakh: str  # the Kazakh automaton's start state

    @property
    def joined(self) -> str:
        return "".join(self.words)

    @property
    def target(self) -> str:
        return self.words[-1]


_WORD_FIT, _GLUE_FIT = _Fit.WORD, _Fit.GLUE


class _Known(NamedTuple):
    """A lower-case word of a text as the matcher keeps it, worked out once."""

    folded: str
    fits: tuple[tuple[_Keyword, _Fit], ...]  # how each keyword fits the word alone
    letters: tuple[str, ...]  # its runs of letters, which tell the language
    signs: int  # what they tell (`language.signs`)


class Hit(NamedTuple):
    """A keyword found in a text, and where."""

    kind: Kind
    label: int
    start: int
    end: int


def _compile(kind: Kind, label: int, phrase: str) -> _Keyword | None:
    phrase = phrase.strip()
    exact, prefix = phrase.startswith("="), phrase.endswith("*")
    phrase = phrase.lstrip("=").rstrip("*").strip()
    lowered = [w for w in re.split(r"[\s\-]+", forms_lower(phrase)) if w]
    if not lowered:
        return None
    words = tuple(fold_lowered(w) for w in lowered)
    last = lowered[-1]
    russian = forms.russian_class(last)
    if not forms.is_cyrillic(last) and russian != "":
        russian = None  # a Latin keyword takes Russian endings only after a consonant
    stem = words[-1][: len(words[-1]) - len(russian)] if russian else words[-1]
    return _Keyword(kind, label, words, last, exact, prefix, stem, russian,
                    forms.kazakh_start(last))


def forms_lower(text: str) -> str:
    """Lower-case a keyword the way texts are (compatibility-normalised, case-folded)."""
    return unicodedata.normalize("NFKC", text).casefold()


class _Text:
    """A text prepared once: lower-case, its words and where they are.

    Words are taken from the lower-case text: folding maps one letter to one letter, so
    they are where the folded text's words are, and each is folded only when needed.
    """

    __slots__ = ("ends", "known", "lower", "normal", "starts", "tags", "words")

    def __init__(self, text: str) -> None:
        normal = unicodedata.normalize("NFKC", text)
        self.normal = normal
        self.lower = normal.casefold()
        found = list(_WORD.finditer(self.lower))
        self.words = [m.group() for m in found]
        self.starts = [m.start() for m in found]
        self.ends = [m.end() for m in found]
        self.known: list[_Known] = []  # the words as the matcher knows them (`_hits`)
        self.tags: list[tuple[int, int]] = []  # where its hashtags are (`_hits`)

    def upper_at(self, i: int) -> bool:
        """Tell whether the letter at i was written in upper case ("#KcellПозор")."""
        # casefold rarely changes a text's length; when it does, case is not told.
        return len(self.normal) == len(self.lower) and self.normal[i].isupper()

    def folded(self, i: int) -> str:
        """Return word i folded."""
        return self.known[i].folded

    def glued_next(self, i: int) -> bool:
        """Tell whether word i+1 follows word i after one hyphen or apostrophe."""
        if i + 1 >= len(self.starts):
            return False
        gap = self.lower[self.ends[i]:self.starts[i + 1]]
        return len(gap) == 1 and gap in forms.GLUE

    def spaced_next(self, i: int) -> bool:
        """Tell whether word i+1 follows word i after spaces or a hyphen only."""
        if i + 1 >= len(self.starts):
            return False
        gap = self.lower[self.ends[i]:self.starts[i + 1]]
        return bool(gap) and (gap.isspace() or gap == "-")


class Matcher:
    """Read a mention: its brand, urgency, topics and places, in one pass."""

    def __init__(
        self,
        brands: Sequence[Brand],
        *,
        urgent: Iterable[str] = (),
        topics: Sequence[Topic] = (),
        places: Sequence[Place] = (),
        word_forms: bool = True,
        languages: bool = True,
    ) -> None:
        self._word_forms = word_forms
        self._languages = languages
        self._brands = tuple(brands)
        self._topics = tuple(t.name for t in topics)
        self._places = tuple(p.name for p in places)
        self._grammar = forms.grammar()
        lists: list[tuple[Kind, int, Iterable[str]]] = [
            *((Kind.BRAND, i, b.keywords) for i, b in enumerate(brands)),
            *((Kind.EXCLUSION, i, b.exclusions) for i, b in enumerate(brands)),
            (Kind.URGENT, 0, urgent),
            *((Kind.TOPIC, i, t.keywords) for i, t in enumerate(topics)),
            *((Kind.PLACE, i, p.keywords) for i, p in enumerate(places)),
        ]
        # Keywords by the folded start a text word must have: the first word itself,
        # and for a one-word keyword also its Russian stem ("кселл", "астан").
        self._by_start: dict[str, list[_Keyword]] = {}
        self._by_joined: dict[str, list[_Keyword]] = {}
        for kind, label, phrases in lists:
            for phrase in phrases:
                keyword = _compile(kind, label, phrase)
                if keyword is None:
                    continue
                starts = {keyword.words[0]}
                if len(keyword.words) == 1 and not keyword.exact:
                    starts.add(keyword.stem)
                for start in starts:
                    self._by_start.setdefault(start, []).append(keyword)
                self._by_joined.setdefault(keyword.joined, []).append(keyword)
        # A text word is looked up by its first three letters (shorter keys by all of
        # theirs): one or three dict look-ups a word, whatever the number of keywords.
        # Each entry: the key, whether the word must be the key itself (the first word
        # of a phrase, an exact-only keyword), and the keywords.
        self._by_head: dict[str, list[tuple[str, bool, _Keyword]]] = {}
        for start, keywords in self._by_start.items():
            for keyword in keywords:
                whole = (len(keyword.words) > 1 or keyword.exact or not self._word_forms) \
                    and not keyword.prefix and start == keyword.words[0]
                self._by_head.setdefault(start[:_HEAD], []).append((start, whole, keyword))
        self._sizes = [*sorted({len(k) for k in self._by_start if len(k) < _HEAD}), _HEAD]
        self._words: dict[str, _Known] = {}
        self._accounts = {
            _account_key(handle): i
            for i, brand in enumerate(brands)
            for handles in brand.accounts.values()
            for handle in handles
            if not handle.strip().isdigit()
        }
        self._own = {
            (platform.casefold(), _account_key(handle)): brand
            for brand in brands
            for platform, handles in brand.accounts.items()
            for handle in handles
        }

    # ── reading ──────────────────────────────────────────────────────────────────

    def read(self, text: str, *, language: bool | None = None) -> Reading:
        """Return what the text is about, and its language — by default only when it
        names a brand (only a case needs it); `language=True` asks for it always."""
        prepared = _Text(text)
        hits = self._hits(prepared)
        brand, urgent, topics, places = _tally(hits)
        detected = None
        if self._languages and (language or (language is None and brand is not None)):
            detected = self._language(prepared, hits)
        return Reading(
            brand=self._brands[brand] if brand is not None else None,
            language=detected,
            urgent=urgent,
            topics=tuple([self._topics[i] for i in sorted(topics)]) if topics else (),
            places=tuple([self._places[i] for i in sorted(places)]) if places else (),
        )

    def _language(self, t: _Text, hits: list[Hit]) -> Language:
        """Return the language of a text's words outside brand names (no evidence of a
        language: "Кселл" looks Kazakh), addresses, handles and hashtags."""
        cut = [(start, end) for kind, _, start, end in hits
               if kind is _BRAND or kind is _EXCLUSION]
        cut += t.tags
        cut += languages.noise(t.lower, hashtags=False)
        known = t.known
        out: set[int] = set()  # the words in them
        for start, end in cut:
            out.update(range(bisect_right(t.ends, start), bisect_left(t.starts, end)))
        found = 0
        for i, word in enumerate(known):
            if i not in out:
                found |= word.signs
        return languages.decide(
            found, lambda: [w for i, word in enumerate(known) if i not in out
                            for w in word.letters])

    def match(self, text: str) -> Brand | None:
        """Return the brand named earliest in the text (outside exclusions), or None."""
        return self.read(text).brand

    def own_account(self, platform: str, author: Author) -> Brand | None:
        """Return the brand whose account wrote this, or None for a customer."""
        for key in (author.id, author.handle):
            if key:
                brand = self._own.get((platform.casefold(), _account_key(key)))
                if brand is not None:
                    return brand
        return None

    def hits(self, text: str) -> list[Hit]:
        """Return every keyword found in the text."""
        return self._hits(_Text(text))

    def _hits(self, t: _Text) -> list[Hit]:
        found: list[Hit] = []
        known, starts, ends = self._words, t.starts, t.ends
        t.known = words = [known.get(word) or self._remember(word) for word in t.words]
        last, lower = len(words) - 1, t.lower
        for i, entry in enumerate(words):
            for keyword, fit in entry.fits:
                start, end = starts[i], ends[i]
                if fit is _GLUE_FIT:
                    # Most often no hyphen or apostrophe follows: told without a call.
                    if i < last and starts[i + 1] == end + 1 and lower[end] in forms.GLUE:
                        end = self._glued_end(keyword, t, i)
                elif fit is not _WORD_FIT:
                    # A phrase: most often its second word is not next (told here too;
                    # a last word is at least its stem).
                    if i + len(keyword.words) - 1 > last or not (
                            words[i + 1].folded.startswith(keyword.stem)
                            if len(keyword.words) == 2
                            else words[i + 1].folded == keyword.words[1]):
                        continue
                    phrase_end = self._match_at(keyword, t, i)
                    if phrase_end is None:
                        continue
                    end = phrase_end
                found.append(Hit(keyword.kind, keyword.label, start, end))
        if "#" in t.lower:
            for m in _HASHTAG.finditer(t.lower):
                t.tags.append(m.span())
                found += self._hashtag(t, m.start(1), m.end(1))
        if "@" in t.lower:
            for m in _ACCOUNT.finditer(t.lower):
                label = self._accounts.get(m.group(1))
                if label is not None:
                    found.append(Hit(_BRAND, label, m.start(), m.end()))
        return found

    def _remember(self, word: str) -> _Known:
        """Work out what the matcher needs to know of a lower-case word, and keep it."""
        letters: tuple[str, ...] = ()
        signs = 0
        if self._languages:
            letters = languages.words_of(word)
            for run in letters:
                signs |= languages.signs(run)
        folded = fold_lowered(word)
        known = _Known(word if folded == word else folded, self._fits(word), letters, signs)
        if len(self._words) >= _KNOWN_WORDS:
            self._words.clear()  # a long-running process meets new words without end
        self._words[word] = known
        return known

    def _fits(self, lowered: str) -> tuple[tuple[_Keyword, _Fit], ...]:
        """Return the keywords a lower-case word can be (the start of), and how.

        This is the per-word part of the rules, which depends on the word alone; what
        follows the word (a glued ending, a phrase's next words) is looked at in place.
        """
        word = fold_lowered(lowered)
        candidates: dict[_Keyword, None] = {}
        for size in self._sizes:
            if size > len(word):
                break
            for key, whole, keyword in self._by_head.get(word[:size], ()):
                if (whole and word != key) or (size < _HEAD and len(key) != size) \
                        or not word.startswith(key):
                    continue
                candidates[keyword] = None
        fits: list[tuple[_Keyword, _Fit]] = []
        for keyword in candidates:
            if len(keyword.words) > 1:
                if word == keyword.words[0]:
                    fits.append((keyword, _Fit.PHRASE))
                continue
            fit = self._last_word_fits(keyword, word, lowered)
            if fit is not None:
                fits.append((keyword, fit))
        return tuple(fits)

    # ── the rules ────────────────────────────────────────────────────────────────

    def _match_at(self, keyword: _Keyword, t: _Text, i: int) -> int | None:
        """Return where a keyword of several words ends if it starts at word i, else None."""
        n = len(keyword.words)
        if i + n > len(t.words):
            return None
        for k in range(n - 1):
            if t.folded(i + k) != keyword.words[k] or not t.spaced_next(i + k):
                return None
        j = i + n - 1
        fit = self._last_word_fits(keyword, t.folded(j), t.words[j])
        if fit is None:
            return None
        return t.ends[j] if fit is _Fit.WORD else self._glued_end(keyword, t, j)

    def _last_word_fits(self, keyword: _Keyword, word: str, lowered: str) -> _Fit | None:
        """Tell whether a (folded) word is the keyword's last word in one of its forms:
        WORD if so, GLUE if it is the word as written (an ending may follow after a
        hyphen or an apostrophe), None if not."""
        target = keyword.words[-1]
        if keyword.exact or not self._word_forms:
            return _Fit.WORD if word == target else None
        if keyword.prefix:
            return _Fit.WORD if word.startswith(target) else None
        stem, russian = keyword.stem, keyword.russian
        # Russian endings replace the keyword's own ending ("Астан|е"); Kazakh and
        # English ones follow the whole keyword ("Астана|да", "Kcell|s").
        cuts = [(stem, russian, False)] if stem != target else []
        cuts.append((target, russian if stem == target else None, True))
        for cut_word, russian_class, full in cuts:
            if word.startswith(cut_word) and len(word) > len(cut_word):
                cut = len(cut_word)
                if self._ending_fits(keyword, word[cut:], lowered[cut:],
                                     russian=russian_class, full=full):
                    return _Fit.WORD
        return _Fit.GLUE if word == target else None

    def _glued_end(self, keyword: _Keyword, t: _Text, j: int) -> int:
        """Return where word j, the keyword as written, ends with its ending: after the
        next word if that is an ending after a hyphen or an apostrophe ("Kcell-ге",
        "Kcell'а"), else at its own end."""
        if t.glued_next(j):
            nxt_end = t.ends[j + 1]
            if self._ending_fits(keyword, t.folded(j + 1), t.words[j + 1], full=True,
                                 russian=keyword.russian
                                 if keyword.stem == keyword.target else None):
                return nxt_end
        return t.ends[j]

    def _ending_fits(self, keyword: _Keyword, rest: str, rest_lower: str, *,
                     russian: str | None, full: bool) -> bool:
        g = self._grammar
        if forms.is_cyrillic(rest_lower):
            if russian is not None and rest in g.russian[russian]:
                return True
            return full and forms.chain_fits(rest, g.kazakh_cyrillic, keyword.kazakh)
        if forms.is_latin(rest_lower) and full:
            return rest in g.english or forms.chain_fits(rest, g.kazakh_latin, keyword.kazakh)
        return False

    def _hashtag(self, t: _Text, start: int, end: int, *, second: bool = False) -> list[Hit]:
        """Return the keywords a hashtag's body (start:end) starts with — and, once, the
        keywords glued after one ("#кселлинтернет": Kcell and internet)."""
        body = fold_lowered(t.lower[start:end])
        found: list[Hit] = []
        for size in range(min(len(body), 60), 0 if not second else 2, -1):
            for keyword in self._by_joined.get(body[:size], ()):
                if keyword.kind is _URGENT or not self._tag_rest_fits(
                        keyword, t, body[size:], start + size, end):
                    continue
                found.append(Hit(keyword.kind, keyword.label, start - 1, end))
                if not second and size < len(body):
                    found += self._hashtag(t, start + size, end, second=True)
        return found

    def _tag_rest_fits(self, keyword: _Keyword, t: _Text, rest: str, cut: int,
                       end: int) -> bool:
        """Tell whether what follows a keyword in a hashtag (`rest`, folded, at cut:end)
        leaves it a mention of the keyword."""
        if not rest or keyword.prefix or rest[0] in "_0123456789":
            return True
        if keyword.exact:
            return False
        if t.upper_at(cut):
            return True  # "#KcellПозор": a second word begins
        if self._ending_fits(keyword, rest, t.lower[cut:end], full=True,
                             russian=keyword.russian if keyword.stem == keyword.target
                             else None):
            return True
        if any(rest[:size] in self._by_joined for size in range(len(rest), 2, -1)):
            return True  # "#кселлинтернет": another keyword follows
        return t.lower[cut] in _CONSONANTS and not rest.startswith(_DERIVING)


def _tally(hits: list[Hit]) -> tuple[int | None, bool, set[int], set[int]]:
    """Return what a text's hits say: the brand named first outside exclusions (its
    position in the config), whether one is urgent, the topics and places."""
    hidden = [(start, end) for kind, _, start, end in hits if kind is _EXCLUSION]
    first = brand = None
    urgent = False
    topics: set[int] = set()
    places: set[int] = set()
    for kind, label, start, end in hits:
        if kind is _BRAND:
            if hidden and any(s < end and start < e for s, e in hidden):
                continue
            if first is None or start < first:
                first, brand = start, label
        elif kind is _TOPIC:
            topics.add(label)
        elif kind is _PLACE:
            places.add(label)
        elif kind is _URGENT:
            urgent = True
    return brand, urgent, topics, places


def _account_key(handle: str) -> str:
    return handle.strip().lstrip("@").casefold()
