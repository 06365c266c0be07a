"""The web console in a real browser: the system's Chromium, headless, driven by
Playwright. A wall screen watches the queue; an agent signs in on a phone with a link
from Slack and claims a case; the messengers' cards follow.

Chromium comes from the system (`apt-get install chromium`; scripts/test installs it
when it is missing and it runs as root); `CHROMIUM` names another binary. The run
saves the wallboard to tests/artifacts/wallboard.png (and, with UPDATE_SCREENSHOTS=1,
to docs/wallboard.png, the README's picture).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
from pathlib import Path

import pytest
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import Page, async_playwright

from socialcare.bot import cases
from socialcare.console import access
from tests.conftest import ROOT, FlowingClock
from tests.e2e.chat import AIGERIM_SLACK, Chat, eventually, mention, minutes_ago, running_chat

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
ARTIFACTS = ROOT / "tests" / "artifacts"
PASSWORD = "wall screen in the care room"
WAIT_MS = 15_000


@pytest.fixture
def chromium() -> str:
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"no Chromium at {CHROMIUM}: install it (apt-get install chromium) "
                    "or set CHROMIUM to its path")
    return CHROMIUM


async def _queue_some(chat: Chat, clock: FlowingClock) -> None:
    """Cases at every stage of their SLA, in the team's languages, for the picture."""
    await chat.ingest(
        mention("ig-20", "Kcell, третий день нет 4G в Алматы, что происходит?",
                published=minutes_ago(clock, 17)),
        mention("ig-21", "Kcell интернет неге баяу? Түнде де жұмыс істемейді",
                published=minutes_ago(clock, 12), platform="vk",
                author={"name": "Ерлан", "handle": "@erlan_k"}),
        mention("ig-22", "Kcell roaming in Istanbul still not working after the SMS",
                published=minutes_ago(clock, 4), platform="x",
                author={"name": "Dana", "handle": "@dana_travels"}),
        mention("f-23", "Kcell: тариф поменяли без предупреждения, на форуме уже 5 страниц",
                source="forums", platform="forum", published=minutes_ago(clock, 35),
                author={"name": "Marat", "handle": "autoforum.kz/marat"}),
        mention("ig-24", "Спасибо Kcell за быстрый ответ вчера!",
                published=minutes_ago(clock, 1), platform="facebook",
                author={"name": "Гульмира", "handle": "gulmira.a"}),
    )
    [answered] = await chat.ingest(mention(
        "ig-25", "Kcell, how do I move my number to eSIM?", published=minutes_ago(clock, 9),
        author={"name": "Timur", "handle": "@timur.b"}))
    await cases.mark_answered(cases.MarkAnswered(answered["case_id"], "daniyar"),
                              uow=chat.deps.uow(), clock=chat.deps.clock, team=chat.deps.team)


async def _sign_in_with_password(page: Page, base_url: str) -> None:
    await page.goto(base_url + "/")
    assert "/signin" in page.url
    await page.fill("input[name=person]", "saule")
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(base_url + "/")


async def test_a_wall_screen_sees_a_case_arrive_and_an_agent_claim_it_from_a_phone(
    tmp_path: Path, flowing_clock: FlowingClock, chromium: str
) -> None:
    async with running_chat(tmp_path, flowing_clock) as chat, async_playwright() as pw:
        await access.set_password(chat.deps, "saule", PASSWORD)
        browser = await pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS,
                                           headless=True)
        try:
            wall = await (await browser.new_context(
                viewport={"width": 1600, "height": 900}, locale="en-GB")).new_page()
            await _sign_in_with_password(wall, chat.base_url)
            await wall.wait_for_selector("#live.on", timeout=WAIT_MS)
            assert "No open cases" in await wall.inner_text("#rows")
            await wall.evaluate("window.notReloaded = true")

            [created] = await chat.ingest(mention(
                "ig-1", "Kcell <b>why</b> is there no 4G in Almaty again?",
                published=minutes_ago(flowing_clock, 2),
                author={"name": "Aigerim S.", "handle": "@aigerim_s"}))
            case_id = created["case_id"]
            row = f"#case-{case_id}"
            await wall.wait_for_selector(row, timeout=WAIT_MS)
            assert await wall.evaluate("window.notReloaded") is True
            assert "<b>why</b> is there no 4G" in await wall.inner_text(f"{row} .words")
            assert re.fullmatch(r"1[23] min \d{1,2} s left",
                                await wall.inner_text(f"{row} .countdown")), \
                await wall.inner_text(f"{row} .countdown")
            await _queue_some(chat, flowing_clock)
            await wall.wait_for_selector("#rows tr.sla-overdue", timeout=WAIT_MS)
            late = await wall.inner_text("#rows tr.sla-overdue .countdown")
            assert re.fullmatch(r"(\d+ h \d+ min|\d+ min \d{1,2} s|\d{1,2} s) overdue", late), late
            await wall.wait_for_selector("#rows tr.sla-warning", timeout=WAIT_MS)

            # The agent asks Slack for a sign-in link and opens it on her phone.
            answer = await chat.slack_command("/console", user=AIGERIM_SLACK)
            found = re.search(r"/signin/link/[A-Za-z0-9_-]+", json.dumps(answer.body["blocks"]))
            assert found is not None
            phone = await (await browser.new_context(
                viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                device_scale_factor=2)).new_page()
            await phone.goto(chat.base_url + found[0])
            await phone.click("#use-link")
            await phone.wait_for_url(chat.base_url + "/")
            await phone.wait_for_selector("#live.on", timeout=WAIT_MS)
            await _save(phone, "wallboard-phone.png")
            await phone.click(f"{row} td.id a")
            await phone.wait_for_url(f"{chat.base_url}/cases/{case_id}")
            await phone.click("button[data-action=claim]")
            await phone.wait_for_selector(".flash.ok", timeout=WAIT_MS)
            assert "Claimed by Aigerim" in await phone.inner_text("#case-state")

            await eventually(lambda: "Claimed by Aigerim" in json.dumps(
                chat.slack_cards()[0].blocks))
            await eventually(lambda: "Claimed by Aigerim" in (chat.telegram_cards()[0].text
                                                               or ""))
            await wall.wait_for_function(
                "row => document.querySelector(row + ' td.holder').innerText"
                ".includes('Aigerim')", arg=row, timeout=WAIT_MS)
            assert await wall.evaluate("window.notReloaded") is True
            picture = await _save(wall, "wallboard.png", full_page=False)
            await _save(phone, "case-phone.png")

            # The shift lead's reports, charts drawn on the server.
            reports = await wall.context.new_page()
            await reports.goto(chat.base_url + "/reports?period=today")
            await reports.wait_for_function(
                "() => [...document.querySelectorAll('.charts img')].every("
                "img => img.complete && img.naturalWidth > 0)", timeout=WAIT_MS)
            assert "7 cases" in await reports.inner_text(".summary")
            await _save(reports, "reports.png")
        finally:
            await browser.close()
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        (ROOT / "docs").mkdir(exist_ok=True)
        shutil.copyfile(picture, ROOT / "docs" / "wallboard.png")


async def test_an_open_case_page_follows_the_case_and_keeps_what_is_being_typed(
    tmp_path: Path, flowing_clock: FlowingClock, chromium: str
) -> None:
    async with running_chat(tmp_path, flowing_clock) as chat, async_playwright() as pw:
        await access.set_password(chat.deps, "saule", PASSWORD)
        service = {"uow": chat.deps.uow(), "clock": chat.deps.clock, "team": chat.deps.team}
        browser = await pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS,
                                           headless=True)
        try:
            page = await (await browser.new_context(locale="en-GB")).new_page()
            await _sign_in_with_password(page, chat.base_url)
            [created] = await chat.ingest(mention(
                "ig-1", "Kcell, no 4G in Almaty", published=minutes_ago(flowing_clock, 2)))
            case_id = created["case_id"]
            await page.goto(f"{chat.base_url}/cases/{case_id}")
            await _shows_the_case_as_stored(page, chat, case_id)
            await page.evaluate("window.notReloaded = true")

            # An agent claims the case in the chat: the page, untouched, shows it.
            await cases.claim(cases.Claim(case_id, "aigerim"), **service)
            await page.wait_for_function(
                "() => document.querySelector('#case-state').innerText.includes('Aigerim')",
                timeout=WAIT_MS)
            assert await page.evaluate("window.notReloaded") is None

            # The lead starts an escalation; the agent answers meanwhile: the page says so
            # and keeps the text until the lead chooses to see the case as it is.
            await _shows_the_case_as_stored(page, chat, case_id)
            await page.evaluate("window.notReloaded = true")
            await page.click("summary:has-text('Escalate')")
            await page.fill("textarea[name=problem]", "Whole district without 4G")
            await cases.mark_answered(cases.MarkAnswered(case_id, "aigerim"), **service)
            await page.wait_for_selector("#case-changed", state="visible", timeout=WAIT_MS)
            assert await page.evaluate("window.notReloaded") is True
            assert await page.input_value("textarea[name=problem]") == \
                "Whole district without 4G"
            await page.click("#case-changed a")
            await page.wait_for_function(
                "() => document.querySelector('#case-state').innerText.includes('Answered')",
                timeout=WAIT_MS)
        finally:
            await browser.close()


async def _shows_the_case_as_stored(page: Page, chat: Chat, case_id: int) -> None:
    """Wait until the cards of the case are posted and in step, and the page shows the
    case as stored: the page lists the cards, so each post or edit reloads it."""
    deadline = asyncio.get_running_loop().time() + WAIT_MS / 1000
    while True:
        async with chat.deps.uow() as uow:
            stored = await uow.console.case_mark(case_id)
            cards = await uow.cards.for_case(case_id)
        settled = cards and all(c.message_id and c.synced_seq >= c.change_seq for c in cards)
        with contextlib.suppress(PlaywrightError):
            shown = await page.get_attribute("[data-case-events]", "data-case-events")
            if settled and shown and shown.endswith(f"mark={stored}"):
                return
        assert asyncio.get_running_loop().time() < deadline, (stored, cards)
        await asyncio.sleep(0.1)


async def _save(page: Page, name: str, *, full_page: bool = True) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    await page.screenshot(path=str(path), full_page=full_page)
    assert path.stat().st_size > 10_000
    return path
