"""The web console over HTTP: sign-in (link, password), sessions, CSRF, the case page's
actions reaching the Slack and Telegram cards, the wallboard's live stream, reports."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import html
import io
import json
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from socialcare.adapters.collectors.signature import sign
from socialcare.console import access
from socialcare.deps import Deps
from socialcare.main import App, build_app, runtime
from socialcare.settings import Settings
from tests.conftest import (
    ROOT,
    TEST_REDIS_URL,
    FakeClock,
    FlowingClock,
    database_url,
    reset_database,
)
from tests.e2e.chat import (
    AIGERIM_SLACK,
    DANIYAR_TG,
    NURLAN_SLACK,
    STRANGER_SLACK,
    TELEGRAM_CHAT,
    eventually,
    mention,
    minutes_ago,
    running_chat,
)
from tests.e2e.conftest import SECRET

PASSWORD = "correct horse battery staple"
ATTACKER = "203.0.113.66"
HTML = {"Accept": "text/html,application/xhtml+xml"}
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(page: str) -> str:
    found = _CSRF.search(page)
    assert found is not None, page[:2000]
    return found[1]


class Browser:
    """A browser's cookie jar and its requests to the console."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.session = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))

    async def close(self) -> None:
        await self.session.close()

    async def get(self, path: str, **kwargs: Any) -> tuple[int, str, aiohttp.ClientResponse]:
        kwargs.setdefault("headers", HTML)
        async with self.session.get(self.base_url + path, allow_redirects=False,
                                    **kwargs) as response:
            return response.status, await response.text(), response

    async def post(self, path: str, data: dict[str, str], **kwargs: Any
                   ) -> tuple[int, str, aiohttp.ClientResponse]:
        kwargs.setdefault("headers", HTML)
        async with self.session.post(self.base_url + path, data=data, allow_redirects=False,
                                     **kwargs) as response:
            return response.status, await response.text(), response

    async def attempt(self, person: str, password: str = PASSWORD, *, next: str = "/"
                      ) -> tuple[int, str, aiohttp.ClientResponse]:
        _, page, _ = await self.get("/signin")
        return await self.post("/signin", {"csrf": csrf_of(page), "person": person,
                                           "password": password, "next": next})

    async def sign_in(self, person: str, password: str = PASSWORD) -> int:
        return (await self.attempt(person, password))[0]

    async def csrf(self, path: str = "/") -> str:
        status, page, _ = await self.get(path)
        assert status == 200, (status, page[:500])
        return csrf_of(page)


@asynccontextmanager
async def browser(base_url: str) -> AsyncIterator[Browser]:
    opened = Browser(base_url)
    try:
        yield opened
    finally:
        await opened.close()


async def _ingest(http: TestClient, *items: dict[str, Any]) -> list[dict[str, Any]]:
    body = json.dumps(list(items)).encode()
    response = await http.post("/ingest", data=body, headers={"X-Signature": sign(body, SECRET)})
    assert response.status == 200, await response.text()
    return list((await response.json())["results"])


def _base(http: TestClient) -> str:
    return str(http.make_url("")).rstrip("/")


async def _state(deps: Deps, case_id: int) -> str:
    async with deps.uow() as uow:
        return (await uow.cases.get(case_id)).state.value


async def test_without_signing_in_pages_redirect_to_sign_in_and_nothing_else_answers(
    http: TestClient, app_deps: Deps, clock: FakeClock
) -> None:
    [created] = await _ingest(http, mention("ig-1", published=minutes_ago(clock, 1)))
    async with browser(_base(http)) as visitor:
        pages = [await visitor.get(path) for path in ("/", "/cases/1", "/reports")]
        others = [await visitor.get(path, headers={"Accept": accept}) for path, accept in (
            ("/events", "text/event-stream"), ("/cases/1/events", "text/event-stream"),
            ("/reports/cases.csv", "*/*"), ("/reports/reaction.png", "image/png"),
            ("/reports/digest.md", "*/*"))]
        claim = await visitor.post("/cases/1/claim", {"csrf": "guess"})
        signout = await visitor.post("/signout", {})
        signin = await visitor.get("/signin")
        style = await visitor.get("/static/console.css", headers={})

    assert [(status, r.headers["Location"]) for status, _, r in pages] == [
        (303, "/signin?next=/"), (303, "/signin?next=/cases/1"),
        (303, "/signin?next=/reports")]
    assert [status for status, _, _ in others] == [401, 401, 401, 401, 401]
    assert claim[0] == signout[0] == 401
    assert await _state(app_deps, created["case_id"]) == "new"
    assert signin[0] == 200 and 'name="password"' in signin[1]
    assert "frame-ancestors 'none'" in signin[2].headers["Content-Security-Policy"]
    assert style[0] == 200 and ".queue" in style[1]


async def test_a_password_signs_in_a_wrong_one_is_refused_and_many_wrong_ones_wait(
    http: TestClient, app_deps: Deps
) -> None:
    await access.set_password(app_deps, "aigerim", PASSWORD)
    await access.set_password(app_deps, "daniyar", PASSWORD)
    async with browser(_base(http)) as visitor, browser(_base(http)) as attacker, \
            browser(_base(http)) as tricked:
        _, page, _ = await visitor.get("/signin?next=%2Fcases%2F7")
        token = csrf_of(page)
        without = await visitor.post("/signin", {"person": "aigerim", "password": PASSWORD})
        wrong = await visitor.post("/signin", {"csrf": token, "person": "aigerim",
                                               "password": "nope"})
        right = await visitor.post("/signin", {"csrf": token, "person": "Aigerim",
                                               "password": PASSWORD, "next": "/cases/7"})
        cookie = right[2].headers.getall("Set-Cookie")
        board = await visitor.get("/")
        for _ in range(access.MAX_FAILURES):
            assert await attacker.sign_in("aigerim", "guess") == 401
        throttled = await attacker.attempt("aigerim")
        elsewhere = await attacker.sign_in("nobody", PASSWORD)
        offsite = await tricked.attempt("daniyar", PASSWORD, next="//evil.example.com/")

    assert without[0] == 403
    assert wrong[0] == 401 and "Wrong name or password." in wrong[1]
    assert right[0] == 303 and right[2].headers["Location"] == "/cases/7"
    session = next(c for c in cookie if c.startswith("sc_session="))
    assert "HttpOnly" in session and "SameSite=Lax" in session and "Secure" not in session
    assert board[0] == 200 and "Aigerim · agent" in board[1]
    assert throttled[0] == 401 and "Too many wrong passwords" in throttled[1]
    assert elsewhere == 401
    assert offsite[2].headers["Location"] == "/"
    async with app_deps.uow() as uow:
        stored = await uow.console.password_hash("aigerim")
    assert stored is not None and stored.startswith("scrypt$") and PASSWORD not in stored


@pytest.mark.parametrize("target", ["//evil.example", "/\t/evil.example", "/\n/evil.example",
                                    "/\\evil.example", "https://evil.example", "/%09/x\x7f"])
async def test_after_signing_in_nothing_leads_off_the_site(
    http: TestClient, app_deps: Deps, target: str
) -> None:
    await access.set_password(app_deps, "daniyar", PASSWORD)
    async with browser(_base(http)) as tricked:
        signed = await tricked.attempt("daniyar", PASSWORD, next=target)
        again = await tricked.get("/signin", params={"next": target})

    assert signed[0] == 303 and signed[2].headers["Location"] == "/"
    assert again[0] == 303 and again[2].headers["Location"] == "/"


async def test_wrong_passwords_sent_at_once_from_one_address_are_all_counted(
    http: TestClient, app_deps: Deps
) -> None:
    await access.set_password(app_deps, "aigerim", PASSWORD)
    guesses = await asyncio.gather(*(access.sign_in_with_password(app_deps, "aigerim", "guess",
                                                                  client=ATTACKER)
                                     for _ in range(3 * access.MAX_FAILURES)),
                                   return_exceptions=True)

    refused = [g for g in guesses if isinstance(g, access.TooManyAttempts)]
    assert len(refused) == 2 * access.MAX_FAILURES
    assert all(g is None for g in guesses if g not in refused)
    with pytest.raises(access.TooManyAttempts):
        await access.sign_in_with_password(app_deps, "aigerim", PASSWORD, client=ATTACKER)


async def test_a_session_lasts_while_used_ends_after_12_idle_hours_and_at_sign_out(
    http: TestClient, app_deps: Deps, clock: FakeClock
) -> None:
    await access.set_password(app_deps, "saule", PASSWORD)
    async with browser(_base(http)) as lead, browser(_base(http)) as idle:
        assert await lead.sign_in("saule") == 303
        assert await idle.sign_in("saule") == 303
        for _ in range(3):  # 33 hours, each step used within 12
            clock.advance(hours=11)
            assert (await lead.get("/"))[0] == 200
        expired = await idle.get("/")
        token = await lead.csrf()
        refused = await lead.post("/signout", {})
        still = await lead.get("/")
        out = await lead.post("/signout", {"csrf": token})
        after = await lead.get("/")

    assert expired[0] == 303 and expired[2].headers["Location"].startswith("/signin")
    assert refused[0] == 403 and still[0] == 200
    assert out[0] == 303 and out[2].headers["Location"] == "/signin"
    assert after[0] == 303


async def test_signing_out_everywhere_ends_every_session_of_the_person_and_no_other(
    http: TestClient, app_deps: Deps
) -> None:
    await access.set_password(app_deps, "saule", PASSWORD)
    await access.set_password(app_deps, "aigerim", PASSWORD)
    async with browser(_base(http)) as desk, browser(_base(http)) as phone, \
            browser(_base(http)) as colleague:
        for visitor, person in ((desk, "saule"), (phone, "saule"), (colleague, "aigerim")):
            assert await visitor.sign_in(person) == 303
        token = await desk.csrf()
        refused = await desk.post("/signout/everywhere", {})
        still = await phone.get("/")
        out = await desk.post("/signout/everywhere", {"csrf": token})
        after = [(await visitor.get("/"))[0] for visitor in (desk, phone, colleague)]

    assert refused[0] == 403 and still[0] == 200
    assert out[0] == 303 and out[2].headers["Location"] == "/signin"
    assert after == [303, 303, 200]


async def test_a_post_without_the_csrf_token_is_refused_and_does_nothing(
    http: TestClient, app_deps: Deps, clock: FakeClock
) -> None:
    [created] = await _ingest(http, mention("ig-1", published=minutes_ago(clock, 1)))
    case_id = created["case_id"]
    await access.set_password(app_deps, "aigerim", PASSWORD)
    async with browser(_base(http)) as agent:
        assert await agent.sign_in("aigerim") == 303
        token = await agent.csrf(f"/cases/{case_id}")
        refused = [await agent.post(f"/cases/{case_id}/claim", data)
                   for data in ({}, {"csrf": ""}, {"csrf": token[::-1]})]
        state_after_refusals = await _state(app_deps, case_id)
        by_header = await agent.post(f"/cases/{case_id}/claim", {},
                                     headers={**HTML, "X-CSRF-Token": token})

    assert [status for status, _, _ in refused] == [403, 403, 403]
    assert state_after_refusals == "new"
    assert by_header[0] == 303
    assert await _state(app_deps, case_id) == "claimed"


async def test_console_links_from_slack_and_telegram_sign_in_once_within_15_minutes(
    tmp_path: Path, flowing_clock: FlowingClock
) -> None:
    async with running_chat(tmp_path, flowing_clock) as chat:
        slack_answer = await chat.slack_command("/console", user=AIGERIM_SLACK)
        stranger = await chat.slack_command("/console", user=STRANGER_SLACK)
        await chat.telegram_send(chat.telegram.command_update(
            "console", "", chat_id=TELEGRAM_CHAT, from_user=DANIYAR_TG))
        direct = await eventually(lambda: chat.telegram.bot_messages(DANIYAR_TG["id"]))
        in_group = await eventually(lambda: [m for m in chat.telegram.bot_messages(
            TELEGRAM_CHAT) if "private message" in (m.text or "")])
        slack_link = _link(json.dumps(slack_answer.body["blocks"]))
        telegram_link = _link(direct[0].text or "")
        async with browser(chat.base_url) as phone, browser(chat.base_url) as laptop:
            shown = await phone.get(slack_link)
            _, also_shown, _ = await laptop.get(slack_link)
            used = await phone.post(slack_link, {"csrf": csrf_of(shown[1])})
            board = await phone.get("/")
            reused = await laptop.post(slack_link, {"csrf": csrf_of(also_shown)})
            after_use = await laptop.get(slack_link)
            _, daniyar_page, _ = await laptop.get(telegram_link)
            flowing_clock.advance(minutes=16)
            late = await laptop.post(telegram_link, {"csrf": csrf_of(daniyar_page)})
            late_page = await laptop.get(telegram_link)
            still_out = await laptop.get("/")

    assert "sign-in link" in slack_answer.body["text"]
    assert slack_answer.body["response_type"] == "ephemeral"
    assert "not in this team's roster" in stranger.body["text"]
    assert direct[0].link_preview_options == {"is_disabled": True}
    assert in_group and telegram_link not in (in_group[0].text or "")
    assert shown[0] == 200 and "Sign in as Aigerim" in shown[1]
    assert used[0] == 303 and used[2].headers["Location"] == "/"
    assert board[0] == 200 and "Aigerim · agent" in board[1]
    assert reused[0] == 410 and "expired or was used" in reused[1]
    assert after_use[0] == 410 and 'name="csrf"' not in after_use[1]
    assert "Sign in as Daniyar" in daniyar_page
    assert late[0] == 410 and late_page[0] == 410
    assert still_out[0] == 303


def _link(text: str) -> str:
    found = re.search(r"http://127\.0\.0\.1:\d+(/signin/link/[A-Za-z0-9_-]+)", text)
    assert found is not None, text
    return found[1]


async def test_a_claim_on_the_case_page_reaches_the_slack_and_telegram_cards(
    tmp_path: Path, flowing_clock: FlowingClock
) -> None:
    async with running_chat(tmp_path, flowing_clock) as chat:
        [created] = await chat.ingest(mention("ig-1", "Kcell <b>no 4G</b> & no answer",
                                              published=minutes_ago(flowing_clock, 3)))
        case_id = created["case_id"]
        await eventually(lambda: chat.slack_cards() and chat.telegram_cards())
        await access.set_password(chat.deps, "aigerim", PASSWORD)
        await access.set_password(chat.deps, "nurlan", PASSWORD)
        async with browser(chat.base_url) as agent, browser(chat.base_url) as director:
            assert await agent.sign_in("aigerim") == 303
            _, before, _ = await agent.get(f"/cases/{case_id}")
            claimed = await agent.post(f"/cases/{case_id}/claim", {"csrf": csrf_of(before)})
            _, after, _ = await agent.get(f"/cases/{case_id}")
            await eventually(lambda: "Claimed by Aigerim" in json.dumps(
                chat.slack_cards()[0].blocks))
            await eventually(lambda: "Claimed by Aigerim" in (chat.telegram_cards()[0].text
                                                               or ""))
            replied = await agent.post(f"/cases/{case_id}/reply", {
                "csrf": csrf_of(after), "text": "We are on it, sorry!"})
            await eventually(lambda: chat.platform.replies)
            _, answered, _ = await agent.get(f"/cases/{case_id}")
            assert await director.sign_in("nurlan") == 303
            _, watching, _ = await director.get(f"/cases/{case_id}")
            refused = await director.post(f"/cases/{case_id}/resolve",
                                          {"csrf": csrf_of(watching)})
            _, told, _ = await director.get(f"/cases/{case_id}")
            agent_reports = await agent.get("/reports")

    assert 'data-action="claim"' in before and 'data-action="claim"' not in after
    assert "Kcell &lt;b&gt;no 4G&lt;/b&gt; &amp; no answer" in before
    assert "<b>no 4G</b>" not in before
    assert claimed[0] == replied[0] == 303
    assert f"Case #{case_id} is yours." in after and "Claimed by Aigerim" in after
    assert re.search(r"<td>Aigerim</td><td>claimed</td>", after)
    assert "Slack" in after and "Telegram" in after
    assert chat.platform.replies[0]["text"] == "We are on it, sorry!"
    assert "was published and recorded" in answered and "Answered by Aigerim" in answered
    assert "We are on it, sorry!" in answered
    assert "data-action=" not in watching and "cases are worked by agents" in watching
    assert refused[0] == 303 and "Directors decide escalations" in told
    assert agent_reports[0] == 403


async def test_escalation_and_hand_off_from_the_case_page_go_where_the_chat_sends_them(
    tmp_path: Path, flowing_clock: FlowingClock
) -> None:
    async with running_chat(tmp_path, flowing_clock) as chat:
        [first, second] = await chat.ingest(
            mention("ig-1", published=minutes_ago(flowing_clock, 3)),
            mention("ig-2", "Kcell charged me twice", published=minutes_ago(flowing_clock, 2)))
        await eventually(lambda: len(chat.slack_cards()) == 2)
        for person in ("saule", "gulnara"):
            await access.set_password(chat.deps, person, PASSWORD)
        async with browser(chat.base_url) as lead, browser(chat.base_url) as billing:
            assert await lead.sign_in("saule") == 303
            case = f"/cases/{first['case_id']}"
            token = await lead.csrf(case)
            bad = await lead.post(f"{case}/escalate", {
                "csrf": token, "category": "critical", "director": "nurlan",
                "problem": "4G down", "more": "twelve"})
            _, refused, _ = await lead.get(case)
            escalated = await lead.post(f"{case}/escalate", {
                "csrf": token, "category": "critical", "director": "nurlan",
                "problem": "4G down in <Almaty>", "options": "Call the network team\n\nWait",
                "more": str(second["case_id"])})
            _, done, _ = await lead.get(case)
            director_cards = await eventually(lambda: _director_cards(chat))
            other = f"/cases/{second['case_id']}"
            handed = await lead.post(f"{other}/handoff", {
                "csrf": token, "team": "billing", "note": "Double charge"})
            [ticket] = await eventually(lambda: chat.tickets.replies)
            assert await billing.sign_in("gulnara") == 303
            _, with_billing, _ = await billing.get(other)
            back = await billing.post(f"{other}/handback", {"csrf": csrf_of(with_billing)})
            _, returned, _ = await billing.get(other)

    assert bad[0] == 303 and "The case numbers are not clear" in refused
    assert escalated[0] == 303
    assert "Escalation #1 (critical) is with Nurlan." in done
    assert "4G down in &lt;Almaty&gt;" in done and "<li>Call the network team</li>" in done
    assert "4G down in <Almaty>" in json.dumps(director_cards[0].blocks)
    assert handed[0] == 303
    assert ticket["case_id"] == second["case_id"] and ticket["note"] == "Double charge"
    assert 'data-action="handback"' in with_billing
    assert 'data-action="claim"' not in with_billing  # the second line does not claim
    assert back[0] == 303 and "Done." in returned
    assert 'data-action="handback"' not in returned


def _director_cards(chat: Any) -> list[Any]:
    dm = [c for c, info in chat.slack.channels.items() if info.get("user") == NURLAN_SLACK]
    return [m for m in chat.slack.messages(dm[0]) if m.action_ids()] if dm else []


async def test_the_wallboard_stream_delivers_a_new_case_without_a_reload(
    http: TestClient, app_deps: Deps, clock: FakeClock
) -> None:
    await access.set_password(app_deps, "saule", PASSWORD)
    async with browser(_base(http)) as wall:
        assert await wall.sign_in("saule") == 303
        _, board, _ = await wall.get("/")
        async with wall.session.get(_base(http) + "/events",
                                    headers={"Accept": "text/event-stream"}) as stream:
            assert stream.headers["Content-Type"] == "text/event-stream"
            first = await _next_board(stream)
            await _ingest(http, mention("ig-1", "Kcell <script>alert(1)</script> 4G?",
                                        published=minutes_ago(clock, 14)))
            second = await _next_board(stream)

    assert "No open cases" in board and "No open cases" in first["rows"]
    assert 'id="case-1"' in second["rows"]
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in second["rows"]
    assert "<script>" not in second["rows"]
    assert 'data-due="2026-11-25T10:01:00+00:00"' in second["rows"]
    assert 'data-count="open">1<' in second["counters"]
    assert second["now"] == clock.now().isoformat()


async def _next_board(stream: aiohttp.ClientResponse) -> dict[str, Any]:
    """Read the stream up to its next board event."""
    return dict(json.loads(await _next_event(stream, "board")))


async def _next_event(stream: aiohttp.ClientResponse, name: str) -> str:
    """Read the stream up to its next event `name`; return its data."""
    async with asyncio.timeout(10):
        event = ""
        while True:
            line = (await stream.content.readline()).decode().rstrip("\n")
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: ") and event == name:
                return line.removeprefix("data: ")


async def test_signing_out_ends_the_session_s_live_pages_at_once(
    http: TestClient, app_deps: Deps, clock: FakeClock
) -> None:
    from socialcare.console.streams import STREAMS_PER_SESSION

    await access.set_password(app_deps, "saule", PASSWORD)
    headers = {"Accept": "text/event-stream"}
    async with browser(_base(http)) as lead, browser(_base(http)) as other:
        assert await lead.sign_in("saule") == 303
        assert await other.sign_in("saule") == 303
        async with contextlib.AsyncExitStack() as open_pages:
            streams = [await open_pages.enter_async_context(
                lead.session.get(_base(http) + "/events", headers=headers))
                for _ in range(STREAMS_PER_SESSION)]
            one_more = await lead.get("/events", headers=headers)
            elsewhere = await open_pages.enter_async_context(
                other.session.get(_base(http) + "/events", headers=headers))
            await _next_board(streams[0])
            token = await lead.csrf()
            await lead.post("/signout", {"csrf": token})
            ended = await _next_event(streams[0], "signout")
            async with asyncio.timeout(10):
                rest = await streams[0].content.read()
            still = await _next_board(elsewhere)

    assert [s.status for s in streams] == [200] * STREAMS_PER_SESSION
    assert one_more[0] == 429
    assert ended == "{}" and rest.strip() == b""  # the stream ended there
    assert "rows" in still  # the person's other session goes on


async def _case_mark(deps: Deps, case_id: int) -> str:
    async with deps.uow() as uow:
        return await uow.console.case_mark(case_id)


async def test_a_case_page_hears_of_each_change_to_its_case_and_no_other(
    http: TestClient, app_deps: Deps, clock: FakeClock
) -> None:
    from socialcare.bot import cases

    first, other = await _ingest(http, mention("ig-1", published=minutes_ago(clock, 3)),
                                 mention("ig-2", "Kcell?", published=minutes_ago(clock, 2)))
    service = {"uow": app_deps.uow(), "clock": app_deps.clock, "team": app_deps.team}
    await access.set_password(app_deps, "saule", PASSWORD)
    async with browser(_base(http)) as lead:
        assert await lead.sign_in("saule") == 303
        _, page, _ = await lead.get(f"/cases/{first['case_id']}")
        found = re.search(r'data-case-events="([^"]+)"', page)
        assert found is not None
        url = _base(http) + html.unescape(found[1])
        async with lead.session.get(url, headers={"Accept": "text/event-stream"}) as stream, \
                lead.session.get(url, headers={"Accept": "text/event-stream"}) as other_tab:
            assert stream.headers["Content-Type"] == "text/event-stream"
            before = await _case_mark(app_deps, first["case_id"])
            await cases.claim(cases.Claim(other["case_id"], "daniyar"), **service)
            assert await _case_mark(app_deps, first["case_id"]) == before
            await cases.claim(cases.Claim(first["case_id"], "aigerim"), **service)
            claimed = await _next_event(stream, "changed")
            assert await _next_event(other_tab, "changed") == claimed
            await cases.mark_answered(cases.MarkAnswered(first["case_id"], "aigerim"),
                                      **service)
            answered = await _next_event(stream, "changed")
        # A page read before a change hears of it as soon as it listens.
        async with lead.session.get(url, headers={"Accept": "text/event-stream"}) as stale:
            late = await _next_event(stale, "changed")
        missing = await lead.get("/cases/999/events", headers={"Accept": "text/event-stream"})

    opened = url.rsplit("mark=", 1)[1]
    assert len({opened, claimed, answered}) == 3
    assert late == answered
    assert missing[0] == 404


async def test_reports_show_the_figures_charts_csv_escalations_and_digest(
    http: TestClient, app_deps: Deps, clock: FakeClock
) -> None:
    from socialcare.bot import cases
    from socialcare.bot import escalations as esc

    results = await _ingest(http, mention("ig-1", published=minutes_ago(clock, 30)),
                            mention("ig-2", "Kcell again", published=minutes_ago(clock, 10)))
    service = {"uow": app_deps.uow(), "clock": app_deps.clock, "team": app_deps.team}
    await cases.mark_answered(cases.MarkAnswered(results[1]["case_id"], "aigerim"), **service)
    await esc.escalate(esc.Escalate(
        case_ids=(results[0]["case_id"],), actor="saule", category=esc.Category.CRITICAL,
        problem="No 4G <in> Almaty", options=("Call the network team",), director="nurlan",
    ), **service)
    await access.set_password(app_deps, "nurlan", PASSWORD)
    async with browser(_base(http)) as director:
        assert await director.sign_in("nurlan") == 303
        page = await director.get("/reports?period=today")
        async with director.session.get(_base(http) + "/reports/volume.png?period=today") as png:
            volume = (png.status, png.headers["Content-Type"], await png.read())
        csv_file = await director.get("/reports/cases.csv?period=today")
        digest = await director.get("/reports/digest.md")
        bad = await director.get("/reports?from=2026-11-30&to=2026-11-01")
        far = await director.get("/reports?from=9999-12-31&to=9999-12-31&week=9999-12-31")

    status, html, _ = page
    assert status == 200
    assert "📊 Report 25.11.2026 (today): 2 cases" in html
    assert 'src="/reports/reaction.png?period=today"' in html
    assert "No 4G &lt;in&gt; Almaty" in html
    assert volume[0] == 200 and volume[1] == "image/png" and volume[2][:4] == b"\x89PNG"
    rows = list(csv.reader(io.StringIO(csv_file[1].lstrip("\ufeff"))))
    assert csv_file[2].headers["Content-Disposition"] == 'attachment; filename="cases-today.csv"'
    assert rows[0][0] == "case_id" and len(rows) == 3
    assert digest[0] == 200 and "No 4G \\<in\\> Almaty" in digest[1]
    assert bad[0] == 400 and "That period is not clear" in bad[1]
    assert far[0] == 400 and "That period is not clear" in far[1]


async def test_over_https_the_cookies_are_secure(tmp_path: Path, clock: FakeClock) -> None:
    url = database_url(tmp_path)
    await reset_database(url)
    settings = Settings(database_url=url, redis_url=TEST_REDIS_URL,
                        config_file=ROOT / "config.example.toml",
                        console_url="https://care.example.com/")
    async with runtime(settings, clock=clock) as app, \
            TestClient(TestServer(build_app(app, with_timers=False))) as http:
        await app.deps.redis.flushdb()
        await access.set_password(app.deps, "saule", PASSWORD)
        form = await http.get("/signin", headers=HTML)
        token = csrf_of(await form.text())
        # A client sends Secure cookies over https only: this one is given by hand.
        signed = await http.post("/signin", allow_redirects=False, headers={
            **HTML, "Cookie": f"sc_signin={token}"}, data={
            "csrf": token, "person": "saule", "password": PASSWORD})
        saule = app.deps.team.person("saule")
        assert saule is not None
        link = await access.issue_link(app.deps, saule)

    assert all("; Secure" in c for c in form.headers.getall("Set-Cookie"))
    assert signed.status == 303
    assert any(c.startswith("sc_session=") and "; Secure" in c
               for c in signed.headers.getall("Set-Cookie"))
    assert link is not None and link.startswith("https://care.example.com/signin/link/")


def _console_command(tmp_path: Path, *args: str, stdin: str = ""
                     ) -> subprocess.CompletedProcess[str]:
    script = str(Path(sys.executable).parent / "socialcare")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TEST_", "SLACK_", "TELEGRAM_"))}
    env |= {"CONFIG_FILE": str(ROOT / "config.example.toml"),
            "DATABASE_URL": database_url(tmp_path)}
    if TEST_REDIS_URL:
        env["REDIS_URL"] = TEST_REDIS_URL
    return subprocess.run([script, "console", *args], env=env, input=stdin,
                          capture_output=True, text=True, timeout=60)


def _settings(tmp_path: Path) -> Settings:
    return Settings(database_url=database_url(tmp_path), redis_url=TEST_REDIS_URL,
                    config_file=ROOT / "config.example.toml")


def test_an_admin_sets_a_password_from_the_command_line(tmp_path: Path) -> None:
    def run(person: str, password: str) -> subprocess.CompletedProcess[str]:
        return _console_command(tmp_path, "password", person, stdin=password + "\n")

    short = run("aigerim", "short")
    stranger = run("nobody", PASSWORD)
    done = run("aigerim", PASSWORD)

    assert short.returncode == 2 and "too short" in short.stderr
    assert stranger.returncode == 2 and "not in the roster" in stranger.stderr
    assert done.returncode == 0, done.stderr
    assert "console password set for Aigerim (aigerim, agent)" in done.stdout

    async def signs_in() -> bool:
        async with runtime(_settings(tmp_path)) as app:
            return await _signs_in(app)

    assert asyncio.run(signs_in())


def test_an_admin_ends_a_person_s_sessions_from_the_command_line(tmp_path: Path) -> None:
    async def sign_in_twice_each() -> list[str]:
        async with runtime(_settings(tmp_path)) as app:
            tokens = []
            for person in ("aigerim", "aigerim", "daniyar"):
                await access.set_password(app.deps, person, PASSWORD)
                made = await access.sign_in_with_password(app.deps, person, PASSWORD,
                                                          client="127.0.0.1")
                assert made is not None
                tokens.append(made.token)
            return tokens

    async def still_signed_in(tokens: list[str]) -> list[bool]:
        async with runtime(_settings(tmp_path)) as app:
            return [await access.visitor(app.deps, token) is not None for token in tokens]

    asyncio.run(reset_database(database_url(tmp_path)))
    tokens = asyncio.run(sign_in_twice_each())
    stranger = _console_command(tmp_path, "signout", "nobody")
    done = _console_command(tmp_path, "signout", "aigerim")

    assert stranger.returncode == 2 and "not in the roster" in stranger.stderr
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "2 console session(s) of Aigerim (aigerim) ended"
    assert asyncio.run(still_signed_in(tokens)) == [False, False, True]


async def _signs_in(app: App) -> bool:
    return await access.sign_in_with_password(app.deps, "aigerim", PASSWORD,
                                              client="127.0.0.1") is not None



async def test_an_escalation_page_refuses_strangers_and_odd_ids_without_an_error(
    http: TestClient, app_deps: Deps
) -> None:
    await access.set_password(app_deps, "saule", PASSWORD)
    async with browser(_base(http)) as anyone, browser(_base(http)) as lead:
        signed_out = [(await anyone.get("/escalations/1"))[0],
                      (await anyone.get("/escalations/1", headers={"Accept": "*/*"}))[0]]
        assert await lead.sign_in("saule") == 303
        odd = [(await lead.get(path))[0] for path in (
            "/escalations/999999999999999999", "/escalations/0", "/escalations/-1",
            "/escalations/1%00", "/escalations/abc", "/escalations/" + "9" * 40)]

    assert signed_out == [303, 401]
    assert odd == [404] * 6


async def test_topics_set_on_the_case_page_reach_the_cards_and_bad_ones_change_nothing(
    tmp_path: Path, flowing_clock: FlowingClock
) -> None:
    async with running_chat(tmp_path, flowing_clock) as chat:
        [created] = await chat.ingest(mention("ig-1", "Kcell списали деньги в роуминге",
                                              published=minutes_ago(flowing_clock, 3)))
        case = f"/cases/{created['case_id']}"
        await eventually(lambda: chat.slack_cards() and chat.telegram_cards())
        await access.set_password(chat.deps, "aigerim", PASSWORD)
        async with browser(chat.base_url) as agent:
            assert await agent.sign_in("aigerim") == 303
            _, before, _ = await agent.get(case)
            token = csrf_of(before)
            unsigned = await agent.post(f"{case}/topic", {"topic": "internet"})
            hostile = [await agent.post(f"{case}/topic", data)  # type: ignore[arg-type]
                       for data in ([("csrf", token), ("topic", "weather")],
                                    [("csrf", token), ("topic", "billing\x00")],
                                    [("csrf", token), ("topic", "x" * 100_000)])]
            _, refused, _ = await agent.get(case)
            unchanged = await _topics(chat.deps, created["case_id"])
            done = await agent.post(f"{case}/topic",  # type: ignore[arg-type]
                                    [("csrf", token), ("topic", "internet"),
                                     ("topic", "roaming")])
            _, after, _ = await agent.get(case)
            await eventually(lambda: "🏷 Mobile internet, Roaming"
                             in (chat.telegram_cards()[0].text or ""))
            _, board, _ = await agent.get("/")

    assert 'class="queue answers-limited answers-ru answers-kk answers-en"' in board
    assert "lang-ru" in board and "Kcell · Russian" in board
    assert "🏷 Billing and charges, Roaming" in before
    assert 'value="billing" checked' in before and 'value="internet">' in before
    assert unsigned[0] == 403
    assert [status for status, _, _ in hostile] == [303, 303, 303]
    assert "There is no topic x" in refused  # the last one's reason
    assert unchanged == ("billing", "roaming")
    assert done[0] == 303 and "🏷 Mobile internet, Roaming" in after
    assert "topics changed" in after


async def _topics(deps: Deps, case_id: int) -> tuple[str, ...]:
    async with deps.uow() as uow:
        return (await uow.cases.get(case_id)).topics
