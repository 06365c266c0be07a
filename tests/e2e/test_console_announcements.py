"""Announcements in the web console: the form announces like /announce, one
announcement's page shows where it stands and withdraws it, the case page offers the
official answer and replies with it; every route refuses what it must."""

from __future__ import annotations

import json
import re
from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestClient

from socialcare.console import access
from socialcare.deps import Deps
from tests.conftest import FakeClock, FlowingClock
from tests.e2e.chat import TELEGRAM_CHAT, eventually, mention, minutes_ago, running_chat
from tests.e2e.test_console import PASSWORD, _base, browser, csrf_of

CALLS_SLACK, SHOPS_TG = "C0CALLS001", -1002222222222


async def test_the_console_form_announces_to_the_audiences_and_its_page_withdraws_it(
    tmp_path: Path, flowing_clock: FlowingClock
) -> None:
    async with running_chat(tmp_path, flowing_clock) as chat:
        chat.slack.add_channel("call-centre", channel_id=CALLS_SLACK)
        chat.telegram.add_chat(SHOPS_TG, title="Shops")
        await access.set_password(chat.deps, "saule", PASSWORD)
        await access.set_password(chat.deps, "aigerim", PASSWORD)
        async with browser(chat.base_url) as lead, browser(chat.base_url) as agent:
            assert await lead.sign_in("saule") == 303
            _, page, _ = await lead.get("/announcements")
            made = await lead.post("/announcements", {
                "csrf": csrf_of(page), "text": "Almaty <b>outage</b> is fixed",
                "audience": "call_centre", "keywords": "4G, Almaty", "until": ""})
            await eventually(lambda: chat.slack.messages(CALLS_SLACK)
                             and chat.telegram.bot_messages(TELEGRAM_CHAT))
            _, standing, _ = await lead.get("/announcements/1")
            assert await agent.sign_in("aigerim") == 303
            _, listed, _ = await agent.get("/announcements")
            refused = await agent.post("/announcements", {"csrf": csrf_of(listed),
                                                           "text": "not mine to say"})
            hidden = await agent.get("/announcements/1")
            withdrawn = await lead.post("/announcements/1/withdraw",
                                        {"csrf": csrf_of(standing)})
            await eventually(lambda: not chat.slack.messages(CALLS_SLACK)[0].pinned
                             and "Withdrawn" in str(chat.slack.messages(CALLS_SLACK)[0].blocks))
            _, after, _ = await lead.get("/announcements/1")
            again = await lead.post("/announcements/1/withdraw", {"csrf": csrf_of(after)})

    assert made[0] == 303 and made[2].headers["Location"] == "/announcements/1"
    assert "Announcement #1 is on its way." in standing
    assert "Almaty &lt;b&gt;outage&lt;/b&gt; is fixed" in standing and "<b>outage" not in standing
    assert "Call centre" in standing and "Not yet: Dana, Erlan" in standing
    assert 'data-action="withdraw"' in standing
    assert "Almaty &lt;b&gt;outage&lt;/b&gt; is fixed" in listed
    assert 'name="text"' not in listed  # agents read; shift leads announce
    assert refused[0] == 403 and hidden[0] == 403
    assert withdrawn[0] == 303 and "is withdrawn" in after and 'data-action="withdraw"' not in after
    assert again[0] == 400 and "no longer in force" in again[1]
    assert not chat.telegram.bot_messages(SHOPS_TG)  # shops were not chosen


async def test_the_case_page_offers_the_official_answer_prefills_the_reply_and_counts_it(
    tmp_path: Path, flowing_clock: FlowingClock
) -> None:
    async with running_chat(tmp_path, flowing_clock) as chat:
        await access.set_password(chat.deps, "saule", PASSWORD)
        await access.set_password(chat.deps, "aigerim", PASSWORD)
        async with browser(chat.base_url) as lead, browser(chat.base_url) as agent:
            assert await lead.sign_in("saule") == 303
            _, page, _ = await lead.get("/announcements")
            await lead.post("/announcements", {
                "csrf": csrf_of(page), "text": "Engineers restored 4G in Almaty at 14:00",
                "keywords": "4G"})
            [created] = await chat.ingest(mention("ig-1", published=minutes_ago(flowing_clock, 1)))
            case_id = created["case_id"]
            await eventually(lambda: "Official answer" in json.dumps(
                [c.blocks for c in chat.slack_cards()]))
            assert await agent.sign_in("aigerim") == 303
            _, case_page, _ = await agent.get(f"/cases/{case_id}")
            _, prefilled, _ = await agent.get(f"/cases/{case_id}?official=1")
            replied = await agent.post(f"/cases/{case_id}/reply", {
                "csrf": csrf_of(prefilled), "announcement": "1",
                "text": "Engineers restored 4G in Almaty at 14:00"})
            await eventually(lambda: chat.platform.replies)
            _, standing, _ = await lead.get("/announcements/1")

    assert "📣 Official answer (#1):" in case_page
    assert f'href="/cases/{case_id}?official=1#reply"' in case_page
    assert 'name="announcement"' not in case_page
    assert re.search(r'<textarea name="text"[^>]*>Engineers restored 4G in Almaty at 14:00'
                     r"</textarea>", prefilled)
    assert '<input type="hidden" name="announcement" value="1">' in prefilled
    assert replied[0] == 303
    assert "Cases answered with it: 1" in standing


async def test_the_announcement_routes_refuse_strangers_forgeries_and_every_bad_input(
    http: TestClient, app_deps: Deps, clock: FakeClock
) -> None:
    await access.set_password(app_deps, "saule", PASSWORD)
    async with browser(_base(http)) as stranger:
        unsigned = [await stranger.post("/announcements", {"text": "hi"}),
                    await stranger.post("/announcements/1/withdraw", {}),
                    await stranger.get("/announcements")]
    async with browser(_base(http)) as lead:
        assert await lead.sign_in("saule") == 303
        token = await lead.csrf("/announcements")
        forged = await lead.post("/announcements", {"csrf": "guess", "text": "hi"})

        async def announce(**form: str) -> tuple[int, str]:
            status, page, _ = await lead.post("/announcements", {"csrf": token, **form})
            return status, page

        empty = await announce(text=" \x00 ")
        too_long = await announce(text="x" * 3001)
        unknown = await announce(text="hi", audience="shop")
        far = await announce(text="hi", until="99999-12-31T00:00")
        nonsense = await announce(text="hi", until="2026-13-45T99:99")
        past = await announce(text="hi", until="1999-01-01T00:00")
        many = await announce(text="hi", keywords=",".join(f"w{i}" for i in range(21)))
        long_word = await announce(text="hi", keywords="x" * 101)
        data = aiohttp.FormData()
        data.add_field("csrf", token)
        data.add_field("text", b"an upload, not a text", filename="text.txt")
        upload = await lead.post("/announcements", data)  # type: ignore[arg-type]
        huge = await lead.post("/announcements", {"csrf": token, "text": "x" * 2_000_000})
        nul = await announce(text="Fixed\x00 in Almaty", keywords="4G\x00")
        missing = await lead.get("/announcements/999999999999999999")
        no_action = await lead.post("/announcements/1/explode", {"csrf": token})
        correct_empty = await lead.post("/announcements/1/correct", {"csrf": token,
                                                                     "text": ""})
    async with app_deps.uow() as uow:
        stored = await uow.announcements.get(1)
        second = await uow.announcements.in_force(clock.now())

    assert [s for s, _, _ in unsigned] == [401, 401, 303]
    assert forged[0] == 403
    assert empty[0] == 400 and "The announcement is empty." in empty[1]
    assert too_long[0] == 400 and "at most 3000 characters" in too_long[1]
    assert unknown[0] == 400 and "There is no audience shop" in unknown[1]
    for refused in (far, nonsense, past):
        assert refused[0] == 400 and "The end time is not understood" in refused[1]
    assert many[0] == 400 and long_word[0] == 400 and "At most 20 keywords" in many[1]
    assert upload[0] == 400 and "The announcement is empty." in upload[1]
    assert huge[0] == 413
    assert nul[0] == 303 and stored.text == "Fixed in Almaty" and stored.keywords == ("4G",)
    assert missing[0] == 404 and "There is no announcement #999999999999999999" in missing[1]
    assert no_action[0] == 404
    assert correct_empty[0] == 400 and "The announcement is empty." in correct_empty[1]
    assert [a.id for a in second] == [1]
