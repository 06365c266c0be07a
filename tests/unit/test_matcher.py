"""The matcher: word forms of Russian, Kazakh and English, hashtags, tagged accounts,
exclusions, exact-only and prefix keywords; topics, places and urgent words."""

from __future__ import annotations

import pytest

from socialcare.bot.model import Author
from socialcare.bot.team import Brand, Place, Topic
from socialcare.bot.understanding.matcher import Matcher

KCELL = Brand(
    name="Kcell", keywords=("Kcell", "Кселл", "Кейселл"),
    exclusions=("Kcell Arena", "Кселл Арена"),
    accounts={"instagram": ("@kcell_kz",), "vk": ("12345",)},
)
ACTIV = Brand(name="activ", keywords=("activ", "Актив", "Актив Казахстан"),
              exclusions=("activ fitness",))
matcher = Matcher([KCELL, ACTIV], languages=False)


def brand_of(text: str, m: Matcher = matcher) -> str | None:
    found = m.match(text)
    return found.name if found else None


@pytest.mark.parametrize(
    ("text", "brand"),
    [
        ("Kcell, why no 4G?", "Kcell"),
        ("KCELL!!!", "Kcell"),
        ("#kcell is down", "Kcell"),
        ("у Кселл опять нет связи", "Kcell"),
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
    assert brand_of(text) == brand


@pytest.mark.parametrize("text", [
    # Russian cases and numbers, on Cyrillic and Latin stems, glued or not.
    "У Кселла опять авария", "Кселлу позор", "С Кселлом невозможно дозвониться",
    "В Кселле сказали ждать", "Кселлы все одинаковые", "У Kcell'а нет связи",
    "Kcellу позор", "Kcell-ом недоволен", "Кейселла связь ужас",
    # Kazakh suffixes and chains of them, both harmonies, after a hyphen or apostrophe.
    "Кселлдің интернеті нашар", "Кселлге қоңырау шалдым", "Kcellден кеттім",
    "Кселлде байланыс жоқ", "Кселлмен сөйлестім", "Кселлдегі жігіттер",
    "Кселлдегілерге айтыңыз", "Kcell-ге жазамын", "Kcell'ден кеттім", "Kcell’дің тарифі",
    "Kcellға қоңырау", "Кселлдерің қайда", "Кселлсіз өмір",
    # Kazakh in Latin letters, English possessive.
    "Kcellden kettim", "Kcellge qońyrau shaldym", "Kcell'diń abonentteri", "Kcell's network",
])
def test_inflected_forms_of_a_brand_are_mentions_of_it(text: str) -> None:
    assert brand_of(text) == "Kcell"


@pytest.mark.parametrize(("text", "brand"), [
    ("У Актива нет связи", "activ"), ("Активтің интернеті жоқ", "activ"),
    ("Activтен кеттім", "activ"), ("Актива Казахстана это касается", "activ"),
])
def test_a_keyword_ending_in_a_consonant_takes_both_languages_endings(
        text: str, brand: str) -> None:
    assert brand_of(text) == brand


@pytest.mark.parametrize("text", [
    "Кселлофан", "Активный отдых", "Активировал промокод", "Активность выросла",
    "Активист", "Активны только по выходным", "Stay active", "activity tracker",
    "activate Windows", "Kcellent", "Активно занимаюсь", "Реактивный самолёт",
    "#активныйотдых", "#activity",
])
def test_a_longer_word_that_only_starts_with_a_keyword_is_not_a_mention(text: str) -> None:
    assert brand_of(text) is None


@pytest.mark.parametrize("text", [
    "Концерт в Kcell Arena", "Kcell Arena-да концерт", "Kcell Arena'ға қалай жетуге",
    "#kcellarena битком", "#KcellArena packed", "Концерт в Кселл Арене",
    "Парковка у Кселл Арены", "Кселл Аренада хоккей", "В activ fitness'е новый тренер",
])
def test_an_exclusion_hides_its_inflected_forms_too(text: str) -> None:
    assert brand_of(text) is None


@pytest.mark.parametrize(("text", "brand"), [
    ("#кселлкз позор", "Kcell"), ("#KcellПозор", "Kcell"), ("#kcell_kz жду", "Kcell"),
    ("#activkz верните", "activ"),
    ("@kcell_kz помогите", "Kcell"), ("@KCELL_KZ!!!", "Kcell"),
    ("cc @kcell_kz.", "Kcell"),
])
def test_hashtags_starting_with_a_keyword_and_tagged_accounts_are_mentions(
        text: str, brand: str) -> None:
    assert brand_of(text) == brand


def test_a_tagged_account_id_that_is_only_digits_is_no_mention() -> None:
    assert brand_of("@12345 hello") is None


def test_an_exact_only_keyword_matches_only_as_written() -> None:
    exact = Matcher([Brand(name="B", keywords=("=Кселл",))], languages=False)
    assert brand_of("Кселл", exact) == "B"
    assert brand_of("#кселл", exact) == "B"
    assert brand_of("Кселла", exact) is None
    assert brand_of("Кселлдің", exact) is None
    assert brand_of("#кселлкз", exact) is None


def test_a_keyword_ending_in_a_star_matches_every_word_it_starts() -> None:
    prefix = Matcher([Brand(name="B", keywords=("дозвон*",))], languages=False)
    assert brand_of("не могу дозвониться", prefix) == "B"
    assert brand_of("недозвон", prefix) is None


def test_without_word_forms_only_the_written_keyword_matches() -> None:
    exact = Matcher([KCELL], word_forms=False, languages=False)
    assert brand_of("Kcell down", exact) == "Kcell"
    assert brand_of("У Кселла авария", exact) is None


TOPICS = (
    Topic(name="internet", title="Mobile internet",
          keywords=("интернет", "мобильный интернет", "4G")),
    Topic(name="sim", title="SIM", keywords=("сим-карта", "симка")),
    Topic(name="network", title="Network", keywords=("связь", "байланыс", "дозвон*")),
)
PLACES = (
    Place(name="almaty", title="Almaty", keywords=("Алматы", "Алмата", "Алма-Ата", "Almaty")),
    Place(name="astana", title="Astana", keywords=("Астана", "Нур-Султан")),
    Place(name="oskemen", title="Oskemen", keywords=("Усть-Каменогорск", "Өскемен")),
)
full = Matcher([KCELL], urgent=("суд", "не работает связь"), topics=TOPICS, places=PLACES,
               languages=False)


@pytest.mark.parametrize(("text", "topics", "places"), [
    ("Kcell, в Алматы нет 4G", ("internet",), ("almaty",)),
    ("Алматыда Кселлдің интернеті жоқ", ("internet",), ("almaty",)),
    ("В Алмате связи нет", ("network",), ("almaty",)),
    ("Алма-Ата без связи", ("network",), ("almaty",)),
    ("Алма-Атада байланыс жоқ", ("network",), ("almaty",)),
    ("Астане и Нур-Султане без мобильного интернета", ("internet",), ("astana",)),
    ("Астанадан Өскеменге дейін интернет жоқ", ("internet",), ("astana", "oskemen")),
    ("Kcell в Усть-Каменогорске не дозвониться", ("network",), ("oskemen",)),
    ("Не могу заменить сим-карту, симку заблокировали", ("sim",), ()),
    ("Как поменять сим карту?", ("sim",), ()),
    ("Almaty'de Kcell internet jok", (), ("almaty",)),
])
def test_topics_and_places_are_read_in_their_word_forms(
        text: str, topics: tuple[str, ...], places: tuple[str, ...]) -> None:
    reading = full.read(text)
    assert (reading.topics, reading.places) == (topics, places)


def test_a_hashtag_glued_from_a_brand_and_another_keyword_names_both() -> None:
    reading = full.read("#кселлинтернет")
    assert reading.brand == KCELL and reading.topics == ("internet",)


def test_a_multi_word_keyword_inflects_its_last_word() -> None:
    reading = full.read("Нет мобильный интернета")  # sic: only the last word inflects
    assert reading.topics == ("internet",)


@pytest.mark.parametrize(("text", "urgent"), [
    ("Kcell, подам в суд", True), ("Kcell, до суда дойду", True), ("Kcell, судом", True),
    ("Kcell, судно", False), ("Kcell: не работает связь", True),
])
def test_urgent_words_match_in_their_forms(text: str, urgent: bool) -> None:
    assert full.read(text).urgent is urgent


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


def test_search_terms_drop_the_exact_and_prefix_marks() -> None:
    brand = Brand(name="B", keywords=("=Kcell", "Кселл*", "Kcell"))
    assert brand.search_terms == ("Kcell", "Кселл")


@pytest.mark.parametrize(("text", "language"), [
    # Brand names, hashtags, tagged accounts and addresses are no evidence of a language.
    ("Кселл Kcell kcell thanks for the fast fix", "en"),
    ("Thanks Kcell, the tower works again #роуминг #дорого", "en"),
    ("@кселл_помощь thanks, the line works again", "en"),
    ("see https://kcell.kz/ru/тарифы the new plans are good", "en"),
    ("Kcell спасибо, всё заработало #thanks", "ru"),
    ("Кселлдің интернеті нашар #kcell", "kk"),
    ("Kcell internet jok, jauap bermedi", "kk"),
    ("Kcell 4G 5G #123 @kcell_kz", "other"),
])
def test_the_language_is_read_from_the_words_outside_names_tags_and_addresses(
        text: str, language: str) -> None:
    reader = Matcher([KCELL, ACTIV])
    assert reader.read(text, language=True).language == language
    assert reader.read(text, language=True).language == language  # from the kept words
