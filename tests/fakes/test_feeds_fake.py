"""Self-tests of the fake feed server and its corpus (aiohttp client, stdlib XML parser).

feedparser is not installed, so the corpus is checked with a small reference reader built on
ElementTree: every well-formed file must yield exactly the manifest's items, and every
ill-formed one must fail to parse yet still contain them.
"""

from __future__ import annotations

import dataclasses
import html
import re
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from urllib.parse import urljoin

import aiohttp
import pytest

from tests.fakes.feeds import (
    CORPUS_DIR,
    HUGE_FEED,
    CorpusFeed,
    ExpectedItem,
    FakeFeeds,
    FeedItem,
    huge_rss,
    load_corpus,
)

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
CORPUS_TIME = datetime(2026, 11, 25, 9, 5, tzinfo=UTC)  # Last-Modified of corpus files
XML_BASE = "{http://www.w3.org/XML/1998/namespace}base"
ATOM = "{http://www.w3.org/2005/Atom}"
RSS1 = "{http://purl.org/rss/1.0/}"
RDF_ABOUT = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}about"
DC_DATE = "{http://purl.org/dc/elements/1.1/}date"
BRANDS = {
    "kcell": re.compile(r"\b(?:kcell|кселл\w{0,3})\b", re.IGNORECASE),
    "activ": re.compile(r"\b(?:activ|актив(?:а|у|е|ом)?)\b", re.IGNORECASE),
}
CORPUS = load_corpus()


@pytest.fixture
async def feeds() -> AsyncIterator[FakeFeeds]:
    """Serve the corpus on a free local port."""
    async with FakeFeeds() as fake:
        yield fake


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP client with a short overall timeout."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
        yield session


# ---------------------------------------------------------------- a reference reader


def plain(text: str) -> str:
    """Turn markup into the text a reader shows: tags stripped, entities decoded, spaces."""
    text = text.replace("<![CDATA[", "").replace("]]>", "")
    return " ".join(html.unescape(re.sub(r"<[^>]*>", " ", text)).split())


def brands_in(text: str) -> frozenset[str]:
    """Return the brands a text mentions."""
    return frozenset(brand for brand, pattern in BRANDS.items() if pattern.search(text))


def with_bases(elem: ET.Element, base: str) -> Iterator[tuple[ET.Element, str]]:
    """Walk the tree, carrying the xml:base in scope."""
    base = urljoin(base, elem.get(XML_BASE, ""))
    yield elem, base
    for child in elem:
        yield from with_bases(child, base)


def text_of(elem: ET.Element | None) -> str | None:
    """Return all text inside `elem` (None when missing)."""
    return None if elem is None else "".join(elem.itertext())


def parse_date(value: str | None) -> datetime | None:
    """Read an RFC 822 or ISO 8601 date."""
    if value is None:
        return None
    moment = datetime.fromisoformat(value) if value[:4].isdigit() else parsedate_to_datetime(value)
    return moment.astimezone(UTC)


def read_feed(body: bytes, entry: CorpusFeed, feed_url: str) -> list[ExpectedItem]:
    """Parse a well-formed corpus feed into items (links resolved, duplicates merged)."""
    text = body.decode(entry.encoding, errors="replace").removeprefix("\ufeff")
    root = ET.fromstring(re.sub(r"^<\?xml[^>]*\?>", "", text))
    found: dict[str, ExpectedItem] = {}
    for elem, base in with_bases(root, feed_url):
        if elem.tag == "item":
            guid, link = elem.findtext("guid"), elem.findtext("link")
            title = plain(text_of(elem.find("title")) or "")
            date, description = elem.findtext("pubDate"), elem.findtext("description") or ""
        elif elem.tag == f"{RSS1}item":
            guid, link = elem.get(RDF_ABOUT), elem.findtext(f"{RSS1}link")
            title = plain(elem.findtext(f"{RSS1}title") or "")
            date, description = elem.findtext(DC_DATE), elem.findtext(f"{RSS1}description") or ""
        elif elem.tag == f"{ATOM}entry":
            guid = elem.findtext(f"{ATOM}id")
            links = [
                el for el in elem.iter(f"{ATOM}link") if el.get("rel", "alternate") == "alternate"
            ]
            link = links[0].get("href") if links else None
            title = plain(elem.findtext(f"{ATOM}title") or "")
            date = elem.findtext(f"{ATOM}published") or elem.findtext(f"{ATOM}updated")
            description = elem.findtext(f"{ATOM}content") or elem.findtext(f"{ATOM}summary") or ""
        else:
            continue
        resolved = urljoin(base, link) if link else None
        item = ExpectedItem(
            title=title,
            guid=guid,
            link=resolved,
            has_date=date is not None,
            published=parse_date(date),
            brands=brands_in(f"{title} {plain(description)}"),
        )
        key = guid or resolved or title
        if key in found:
            item = dataclasses.replace(found[key], occurrences=found[key].occurrences + 1)
        found[key] = item
    return list(found.values())


def resolved(items: tuple[ExpectedItem, ...], feed_url: str) -> list[ExpectedItem]:
    """Resolve the manifest's relative links against the URL the feed was fetched from."""
    return [
        dataclasses.replace(it, link=urljoin(feed_url, it.link) if it.link else None)
        for it in items
    ]


# ---------------------------------------------------------------- the corpus itself


def test_manifest_lists_every_corpus_file_and_only_those() -> None:
    on_disk = {path.name for path in CORPUS_DIR.iterdir()} - {"manifest.json"}
    assert set(CORPUS) == on_disk
    kinds = {entry.kind for entry in CORPUS.values()}
    assert kinds == {"rss2", "atom", "rss1", "html", "empty", "json"}


@pytest.mark.parametrize("name", sorted(n for n, e in CORPUS.items() if e.well_formed))
def test_a_well_formed_file_yields_exactly_its_manifest_items(name: str) -> None:
    entry = CORPUS[name]
    feed_url = f"http://127.0.0.1:8080/feeds/{name}"
    assert read_feed(entry.read_bytes(), entry, feed_url) == resolved(entry.items, feed_url)


@pytest.mark.parametrize("name", sorted(n for n, e in CORPUS.items() if not e.well_formed))
def test_an_ill_formed_file_fails_xml_parsing_but_holds_its_items(name: str) -> None:
    entry = CORPUS[name]
    text = entry.read_bytes().decode(entry.encoding, errors="replace")
    with pytest.raises(ET.ParseError):
        ET.fromstring(re.sub(r"^<\?xml[^>]*\?>", "", text))
    shown, raw = plain(text), html.unescape(text)
    for item in entry.items + entry.optional_items:
        assert item.title in shown
        for value in (item.guid, item.link):
            assert value is None or value in raw


def test_the_corpus_covers_what_the_brief_asks() -> None:
    items = [item for entry in CORPUS.values() for item in entry.items]
    assert any(not item.has_date for item in items)
    assert any(item.guid is None and item.link is None for item in items)
    assert any(item.occurrences > 1 for item in items)
    assert {"kcell", "activ"} <= {brand for item in items for brand in item.brands}
    assert any(not item.brands for item in items)
    assert CORPUS["broken-truncated.xml"].optional_items
    assert all(not CORPUS[n].items for n in CORPUS if n.startswith("notfeed-"))
    assert len(CORPUS["dalanews-rss2.xml"].items) >= 5


def test_encoding_cases_are_what_the_manifest_says() -> None:
    def raw(name: str) -> bytes:
        return CORPUS[name].read_bytes()

    def strict_utf8(data: bytes) -> bool:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            return False
        return True

    cp1251_declared = raw("enc-cp1251-declared.xml")
    assert b'encoding="windows-1251"' in cp1251_declared
    assert "charset=windows-1251" in (CORPUS["enc-cp1251-declared.xml"].content_type or "")
    assert not strict_utf8(cp1251_declared)
    as_utf8 = raw("enc-cp1251-as-utf8.xml")
    assert b'encoding="utf-8"' in as_utf8 and not strict_utf8(as_utf8)
    assert "Kcell в Костанае" in as_utf8.decode("windows-1251")
    assert raw("enc-utf8-bom.xml").startswith(b"\xef\xbb\xbf<?xml")
    assert CORPUS["enc-utf8-bom.xml"].content_type == "application/xml"
    koi8 = raw("enc-koi8r-header-only.xml")
    assert koi8.startswith(b'<?xml version="1.0"?>') and not strict_utf8(koi8)
    assert "Кселл" in koi8.decode("koi8-r")
    assert CORPUS["enc-koi8r-header-only.xml"].content_type == "text/xml; charset=KOI8-R"
    assert raw("enc-undeclared-utf8.xml").startswith(b"<rss")
    assert CORPUS["enc-undeclared-utf8.xml"].content_type is None
    assert raw("enc-undeclared-cp1251.xml").startswith(b"<rss")
    assert not strict_utf8(raw("enc-undeclared-cp1251.xml"))
    invalid = raw("enc-invalid-bytes.xml")
    assert not strict_utf8(invalid)
    assert invalid.index(b"\xff\xfe") > len(invalid) // 3  # in the middle, not a BOM


# ---------------------------------------------------------------- serving


async def test_every_corpus_file_is_served_byte_for_byte_with_its_content_type(
    feeds: FakeFeeds, http: aiohttp.ClientSession
) -> None:
    for name, entry in CORPUS.items():
        async with http.get(feeds.url(name)) as response:
            assert response.status == 200, name
            assert await response.read() == entry.read_bytes(), name
            assert response.headers.get("Content-Type") == entry.content_type, name
            assert response.headers["ETag"].startswith('"')
            assert response.headers["Last-Modified"] == "Wed, 25 Nov 2026 09:05:00 GMT"
    async with http.head(feeds.url("dalanews-rss2.xml")) as response:
        assert response.status == 200
        assert int(response.headers["Content-Length"]) == len(
            CORPUS["dalanews-rss2.xml"].read_bytes()
        )
        assert await response.read() == b""
    assert [r.http_method for r in feeds.requests][-1] == "HEAD"


async def test_unknown_paths_are_404_and_other_methods_405(
    feeds: FakeFeeds, http: aiohttp.ClientSession
) -> None:
    async with http.get(feeds.url("no-such-feed.xml")) as response:
        assert response.status == 404
        assert "404 Not Found" in await response.text()
    async with http.post(feeds.url("dalanews-rss2.xml"), data=b"x") as response:
        assert response.status == 405
        assert response.headers["Allow"] == "GET, HEAD"


async def test_an_unchanged_feed_costs_a_304_with_no_body(
    feeds: FakeFeeds, http: aiohttp.ClientSession
) -> None:
    url = feeds.url("qalaforum-atom.xml")
    async with http.get(url) as first:
        etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
        await first.read()
    async with http.get(url, headers={"If-None-Match": etag}) as response:
        assert response.status == 304
        assert await response.read() == b""
        assert response.headers["ETag"] == etag
        assert "Content-Type" not in response.headers
    async with http.get(url, headers={"If-Modified-Since": modified}) as response:
        assert response.status == 304
    async with http.get(url, headers={"If-None-Match": f'"stale", W/{etag}'}) as response:
        assert response.status == 304  # a list, and weak comparison
    async with http.get(url, headers={"If-None-Match": "*"}) as response:
        assert response.status == 304
    # If-None-Match wins over If-Modified-Since (RFC 9110 §13.2.2)
    both = {"If-None-Match": '"stale"', "If-Modified-Since": modified}
    async with http.get(url, headers=both) as response:
        assert response.status == 200
    older = format_datetime(CORPUS_TIME - timedelta(seconds=1), usegmt=True)
    async with http.get(url, headers={"If-Modified-Since": older}) as response:
        assert response.status == 200
    async with http.get(url, headers={"If-Modified-Since": "yesterday"}) as response:
        assert response.status == 200  # an invalid date is ignored

    log = feeds.requests_to("qalaforum-atom.xml")
    assert [(r.status, r.conditional) for r in log] == [
        (200, False),
        (304, True),
        (304, True),
        (304, True),
        (304, True),
        (200, True),
        (200, True),
        (200, True),
    ]
    assert log[1].if_none_match == etag and log[2].if_modified_since == modified
    assert [r.body_bytes for r in log[1:5]] == [0, 0, 0, 0]
    assert log[0].body_bytes == len(CORPUS["qalaforum-atom.xml"].read_bytes())


async def test_touch_moves_last_modified_but_keeps_the_etag(
    feeds: FakeFeeds, http: aiohttp.ClientSession
) -> None:
    url = feeds.url("zhanakun-rdf.xml")
    async with http.get(url) as first:
        etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    feeds.touch("zhanakun-rdf.xml", at=T0)
    async with http.get(url, headers={"If-Modified-Since": modified}) as response:
        assert response.status == 200
        assert response.headers["Last-Modified"] == "Wed, 25 Nov 2026 10:00:00 GMT"
    both = {"If-None-Match": etag, "If-Modified-Since": modified}
    async with http.get(url, headers=both) as response:
        assert response.status == 304


async def test_a_server_without_validators_never_answers_304(
    feeds: FakeFeeds, http: aiohttp.ClientSession
) -> None:
    feeds.set_validators("zhanakun-rdf.xml", etag=False, last_modified=False)
    url = feeds.url("zhanakun-rdf.xml")
    async with http.get(url) as response:
        assert "ETag" not in response.headers and "Last-Modified" not in response.headers
    conditional = {"If-None-Match": '"x"', "If-Modified-Since": "Wed, 25 Nov 2026 12:00:00 GMT"}
    async with http.get(url, headers=conditional) as response:
        assert response.status == 200


async def test_publish_then_poll_shows_new_items_and_a_new_etag(
    http: aiohttp.ClientSession,
) -> None:
    async with FakeFeeds(corpus=False, now=lambda: T0) as feeds:
        feeds.create_live("mentions.xml", title="Qala Forum — новые темы", keep=3)
        feeds.publish(
            "mentions.xml",
            [
                FeedItem("Kcell: сбой в Алматы?", guid="qala-1", link="https://forum.qala.kz/t/1"),
                {"title": "Погода на выходные", "guid": "qala-0"},
            ],
        )
        url = feeds.url("mentions.xml")
        async with http.get(url) as response:
            body, etag = await response.text(), response.headers["ETag"]
            first_modified = response.headers["Last-Modified"]
        assert body.index("qala-1") < body.index("qala-0")
        assert "<pubDate>Wed, 25 Nov 2026 10:00:01 +0000</pubDate>" in body

        async with http.get(url, headers={"If-None-Match": etag}) as response:
            assert response.status == 304

        feeds.publish("mentions.xml", [FeedItem("activ: новые тарифы", guid="qala-2")])
        async with http.get(
            url, headers={"If-None-Match": etag, "If-Modified-Since": first_modified}
        ) as response:
            assert response.status == 200
            assert response.headers["ETag"] != etag
            # the clock stood still, yet Last-Modified moved on by a second
            assert parsedate_to_datetime(response.headers["Last-Modified"]) == T0 + timedelta(
                seconds=2
            )
            assert ET.fromstring(await response.read()).findtext("channel/item/guid") == "qala-2"

        feeds.publish("mentions.xml", [FeedItem(f"Тема {n}", guid=f"qala-{n}") for n in (3, 4)])
        assert [item.guid for item in feeds.live_items("mentions.xml")] == [
            "qala-3",
            "qala-4",
            "qala-2",
        ]  # only the newest `keep` are shown; a slow poller misses qala-1
        assert [r.status for r in feeds.requests_to("mentions.xml")] == [200, 304, 200]
        feeds.serve("static.xml", b"<rss/>")
        with pytest.raises(ValueError, match="not a live feed"):
            feeds.publish("static.xml", [])


async def test_serve_replaces_a_body_and_remove_makes_it_404(
    feeds: FakeFeeds, http: aiohttp.ClientSession
) -> None:
    feeds.serve("dalanews-rss2.xml", b"", content_type="text/html", at=T0)
    async with http.get(feeds.url("dalanews-rss2.xml")) as response:
        assert response.status == 200 and await response.read() == b""
        assert response.headers["Content-Type"] == "text/html"
    feeds.remove("dalanews-rss2.xml")
    async with http.get(feeds.url("dalanews-rss2.xml")) as response:
        assert response.status == 404


@pytest.mark.parametrize("status", [301, 302, 307, 308])
async def test_redirects_are_followed_to_the_feed(
    feeds: FakeFeeds, http: aiohttp.ClientSession, status: int
) -> None:
    feeds.redirect("/rss.php", "dalanews-rss2.xml", status=status)
    async with http.get(feeds.url("/rss.php?lang=ru")) as response:
        assert response.status == 200
        assert str(response.url) == feeds.url("dalanews-rss2.xml")
        assert [hop.status for hop in response.history] == [status]
    async with http.get(feeds.url("/rss.php"), allow_redirects=False) as response:
        assert response.status == status
        assert response.headers["Location"] == feeds.url("dalanews-rss2.xml")
    first = feeds.requests_to("/rss.php")[0]
    assert (first.status, first.query, first.location) == (
        status,
        "lang=ru",
        feeds.url("dalanews-rss2.xml"),
    )


async def test_a_relative_location_and_a_redirect_loop(
    feeds: FakeFeeds, http: aiohttp.ClientSession
) -> None:
    feeds.redirect("old.xml", "zhanakun-rdf.xml", absolute=False)
    async with http.get(feeds.url("old.xml"), allow_redirects=False) as response:
        assert response.headers["Location"] == "/feeds/zhanakun-rdf.xml"
    async with http.get(feeds.url("old.xml")) as response:
        assert response.status == 200
    feeds.redirect("/a", "/b", status=302)
    feeds.redirect("/b", "/a", status=302)
    with pytest.raises(aiohttp.TooManyRedirects):
        async with http.get(feeds.url("/a"), max_redirects=4):
            pass
    assert len(feeds.requests_to("/a")) + len(feeds.requests_to("/b")) == 4


async def test_faults_slow_timeout_and_errors(
    feeds: FakeFeeds, http: aiohttp.ClientSession
) -> None:
    name = "dalanews-rss2.xml"
    feeds.slow_next(name, delay=0.5)
    with pytest.raises(TimeoutError):
        async with http.get(feeds.url(name), timeout=aiohttp.ClientTimeout(total=0.1)):
            pass
    feeds.slow_next(feeds.path(name), delay=0.05)
    async with http.get(feeds.url(name)) as response:
        assert response.status == 200
    # aiohttp sends an idempotent request a second time when the server disconnects, so a
    # reader sees the failure only when both attempts are dropped.
    feeds.timeout_next(name, delay=0.05, times=2)
    with pytest.raises(aiohttp.ServerDisconnectedError):
        async with http.get(feeds.url(name)) as response:
            await response.read()
    feeds.fail_next(name, 503, retry_after=120)
    async with http.get(feeds.url(name)) as response:
        assert response.status == 503
        assert response.headers["Retry-After"] == "120"
        assert "503 Service Unavailable" in await response.text()
    async with http.get(feeds.url(name)) as response:
        assert response.status == 200
    assert [(r.status, r.fault) for r in feeds.requests_to(name)] == [
        (200, "slow"),
        (None, "timeout"),
        (None, "timeout"),
        (503, "injected 503"),
        (200, None),
    ]


async def test_the_huge_feed_is_10_mb_of_valid_rss_with_brands_on_top(
    feeds: FakeFeeds, http: aiohttp.ClientSession
) -> None:
    generated = huge_rss()
    async with http.get(feeds.url(HUGE_FEED)) as response:
        body = await response.read()
        assert response.headers["Content-Type"] == "application/rss+xml; charset=utf-8"
        etag = response.headers["ETag"]
    assert body == generated.body
    assert 10_000_000 <= len(body) < 10_100_000
    items = ET.fromstring(body).findall("channel/item")
    assert len(items) == len(generated.items) > 3000
    assert [item.findtext("title") for item in items[:4]] == [
        it.title for it in generated.items[:4]
    ]
    assert all(brands_in(item.findtext("title") or "") for item in items[:4])
    assert not any(brands_in(item.findtext("title") or "") for item in items[4:])
    assert items[-1].findtext("guid") == generated.items[-1].guid
    async with http.get(feeds.url(HUGE_FEED), headers={"If-None-Match": etag}) as response:
        assert response.status == 304
    assert [r.body_bytes for r in feeds.requests_to(HUGE_FEED)] == [len(body), 0]
