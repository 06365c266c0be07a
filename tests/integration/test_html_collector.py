"""The html source over saved forum and comment pages (made for these tests), served by a
fake site: every item once across polls and pages, replies joined into their topic's
case, dates in words, robots.txt, politeness, and a selector that matches nothing."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest

from socialcare.adapters.collectors.pages import HtmlCollector, Options
from socialcare.bot import collecting
from socialcare.bot.model import Tier
from socialcare.bot.pipeline import Outcome, Pipeline
from socialcare.bot.sources import FAILING_AFTER, Alert, SourceUnavailable
from socialcare.bot.team import Source
from tests.conftest import T0, FakeClock, Storage, make_team
from tests.fakes.site import FakeSite, page

FORUM = Source(name="aksay-forum", kind="html", platform="forum", tier=Tier.EXTRA,
               poll_seconds=60)
NEWS = Source(name="aksay-news", kind="html", platform="news", tier=Tier.EXTRA)
FIRST, SECOND = "/search.php?search_id=newposts", "/search.php?search_id=newposts&start=4"
ARTICLE = "/news/2026/11/24/kcell-tariffs"
ALMATY = ZoneInfo("Asia/Almaty")
PHPBB = {"item": "div.search.post", "text": "div.content", "link": "div.postbody h3 a",
         "author": "dt.author a.username", "date": "dd.search-result-date",
         "thread": "dd a[href*='viewtopic.php?t=']", "next": "li.arrow.next a"}
COMMENTS = {"item": "div.comment", "text": ".comment__text", "link": "a.comment__link",
            "author": ".comment__author", "date": ".comment__date"}


@pytest.fixture
async def site() -> AsyncIterator[FakeSite]:
    async with FakeSite() as server:
        server.serve(FIRST, page("forum_newposts_1.html"))
        server.serve(SECOND, page("forum_newposts_2.html"))
        server.serve(ARTICLE, page("news_comments.html"))
        yield server


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def reader(http: aiohttp.ClientSession, site: FakeSite, clock: FakeClock, path: str = FIRST,
           **options: Any) -> HtmlCollector:
    values = {**PHPBB, "url": site.url(path), "pages": 2, "delay_seconds": 0,
              "backfill_hours": 72} | options
    return HtmlCollector(http, Options.model_validate(values), clock=clock, zone="Asia/Almaty")


def local(day: int, hour: int, minute: int) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=ALMATY).astimezone(UTC)


async def test_a_forum_section_is_read_over_its_pages_with_authors_links_dates_and_topics(
    http: aiohttp.ClientSession, site: FakeSite, clock: FakeClock
) -> None:
    polled = await reader(http, site, clock).poll(FORUM, {})

    found = {m.url.rsplit("#", 1)[-1] if m.url else "": m for m in polled.mentions}
    # Oldest first, so that a topic's first post opens its case.
    assert list(found) == ["p4961", "p4970", "p4990", "p4985", "p5002", "p5003"]
    bolat = found["p5003"]
    assert bolat.text == "Вчера вечером тоже не было, Kcell молчит."
    assert bolat.author.name == "Bolat"
    assert bolat.url == site.url("/viewtopic.php?p=5003#p5003")
    assert bolat.external_id == bolat.url
    assert bolat.thread_id == site.url("/viewtopic.php?t=101")
    # Dates in words, in the source's timezone (T0 is 15:00 in Almaty).
    assert bolat.published_at == local(25, 9, 15)
    assert found["p4990"].published_at == local(24, 14, 30)
    assert found["p4985"].published_at == local(24, 18, 5)
    assert {found[p].thread_id for p in ("p5003", "p4990", "p4970")} == {
        site.url("/viewtopic.php?t=101")}
    assert [r.path for r in site.requests] == ["/robots.txt", FIRST, SECOND]


async def test_every_item_is_found_once_across_polls(
    http: aiohttp.ClientSession, site: FakeSite, clock: FakeClock
) -> None:
    collector = reader(http, site, clock)
    first = await collector.poll(FORUM, {})
    unchanged = await collector.poll(FORUM, first.cursor)
    # A new post on top: page 1 changes, one post moves on to page 2.
    body = page("forum_newposts_1.html").decode()
    start, end = body.index('<div class="search post bg2">'), body.index('<hr class="divider"')
    new_post = body[start:end]
    new_post = new_post.replace("p=5003#p5003", "p=5010#p5010").replace(
        "Вчера вечером тоже не было", "Сегодня утром связь так и не появилась")
    site.serve(FIRST, body.replace('<div class="search post bg2">', new_post + "\n" +
                                   '<div class="search post bg2">', 1).encode())
    changed = await collector.poll(FORUM, unchanged.cursor)

    assert len(first.mentions) == 6
    assert unchanged.mentions == []
    assert site.requested(FIRST)[-2].status == 304  # a conditional GET, not modified
    assert [m.url for m in changed.mentions] == [site.url("/viewtopic.php?p=5010#p5010")]


async def test_replies_of_one_topic_make_one_case(
    http: aiohttp.ClientSession, site: FakeSite, clock: FakeClock, storage: Storage
) -> None:
    team = make_team(sources=(*make_team().sources, FORUM))
    pipeline = Pipeline(team, clock=clock)

    collected = await collecting.poll(FORUM, reader(http, site, clock), uow=storage.uow,
                                      pipeline=pipeline, clock=clock)

    outcomes = [r.outcome for r in collected.results]
    assert outcomes.count(Outcome.CREATED) == 2  # topic 101 (Kcell) and 120 (activ)
    topic = {r.case_id for r in collected.results if r.outcome is not Outcome.DROPPED}
    assert len(topic) == 2
    async with storage.uow() as uow:
        cases = await uow.cases.get_many(topic)
        kcell = next(c for c in cases.values() if c.brand == "Kcell")
        thread = await uow.mentions.for_case(kcell.id or 0)
    assert [m.url.rsplit("#", 1)[-1] for m in thread if m.url] == ["p4970", "p4990", "p5003"]
    assert kcell.published_at == local(24, 9, 0)  # the topic's first post starts the clock


async def test_a_comments_page_gives_each_comment_with_its_kazakh_date(
    http: aiohttp.ClientSession, site: FakeSite, clock: FakeClock
) -> None:
    collector = HtmlCollector(http, Options.model_validate(
        {**COMMENTS, "url": site.url(ARTICLE), "delay_seconds": 0}), clock=clock,
        zone="Asia/Almaty")

    polled = await collector.poll(NEWS, {})

    assert [(m.author.name, m.url, m.published_at, m.thread_id) for m in polled.mentions] == [
        ("Нұрлан", site.url(ARTICLE + "#comment-9002"), local(24, 21, 10), None),
        ("Айгерім", site.url(ARTICLE + "#comment-9001"), T0 - timedelta(hours=2), None),
    ]  # the third comment says nothing
    assert polled.mentions[1].text == "Kcell, бағаны тағы көтересіздер ме? Интернет та баяу!"


async def test_a_page_in_a_legacy_encoding_is_read_by_its_declared_charset(
    http: aiohttp.ClientSession, site: FakeSite, clock: FakeClock
) -> None:
    body = page("forum_newposts_2.html").decode().replace('<meta charset="utf-8" />', "")
    site.serve(SECOND, body.encode("windows-1251"), content_type="text/html; charset=windows-1251")

    polled = await reader(http, site, clock, SECOND, pages=1).poll(FORUM, {})

    assert polled.mentions[-1].author.name == "Bolat"
    assert polled.mentions[-1].text.startswith("С понедельника в Аксае у Kcell нет 4G")


async def test_robots_txt_disallowing_the_pages_is_respected(
    http: aiohttp.ClientSession, site: FakeSite, clock: FakeClock
) -> None:
    site.robots("User-agent: *\nDisallow: /search.php\n")

    with pytest.raises(SourceUnavailable, match=r"robots\.txt disallows"):
        await reader(http, site, clock).poll(FORUM, {})

    assert [r.path for r in site.requests] == ["/robots.txt"]


async def test_robots_txt_disallowing_the_next_page_stops_there(
    http: aiohttp.ClientSession, site: FakeSite, clock: FakeClock
) -> None:
    site.robots("User-agent: socialcare\nDisallow: /search.php?search_id=newposts&start=\n")

    polled = await reader(http, site, clock).poll(FORUM, {})

    assert len(polled.mentions) == 4
    assert "robots.txt disallows" in (polled.note or "")
    assert SECOND not in [r.path for r in site.requests]


async def test_requests_to_one_host_keep_the_politeness_delay(
    http: aiohttp.ClientSession, site: FakeSite, clock: FakeClock
) -> None:
    site.robots("User-agent: *\nAllow: /\n")

    await reader(http, site, clock, delay_seconds=0.3).poll(FORUM, {})

    times = [r.at for r in site.requests]
    assert len(times) == 3
    assert all(later - earlier >= 0.29 for earlier, later in itertools.pairwise(times))


async def test_a_selector_that_matches_nothing_fails_the_source_naming_it(
    http: aiohttp.ClientSession, site: FakeSite, clock: FakeClock, storage: Storage
) -> None:
    team = make_team(sources=(*make_team().sources, FORUM))
    pipeline = Pipeline(team, clock=clock)
    collector = reader(http, site, clock, item="li.row")  # the site's theme changed

    for _ in range(FAILING_AFTER):
        collected = await collecting.poll(FORUM, collector, uow=storage.uow,
                                          pipeline=pipeline, clock=clock)
        clock.advance(hours=2)
    with pytest.raises(SourceUnavailable, match=r"text = 'div\.missing'"):
        await reader(http, site, clock, text="div.missing").poll(FORUM, {})

    async with storage.uow() as uow:
        state = await uow.sources.get(FORUM.name)
    assert collected.alert is not None and collected.alert[1] is Alert.FAILING
    assert state.last_error == f"the selector item = 'li.row' matched nothing on {site.url(FIRST)}"


def test_a_wrong_css_selector_is_refused_when_the_config_loads() -> None:
    with pytest.raises(ValueError, match="not a CSS selector"):
        Options.model_validate({**PHPBB, "url": "https://forum.example.kz/", "item": "div[["})


async def test_one_of_several_pages_failing_leaves_the_others_and_says_so(
    http: aiohttp.ClientSession, site: FakeSite, clock: FakeClock
) -> None:
    collector = HtmlCollector(http, Options.model_validate({
        **COMMENTS, "urls": [site.url(ARTICLE), site.url("/news/gone")], "delay_seconds": 0}),
        clock=clock, zone="Asia/Almaty")

    polled = await collector.poll(NEWS, {})

    assert len(polled.mentions) == 2
    assert polled.note == "the page answered HTTP 404"
