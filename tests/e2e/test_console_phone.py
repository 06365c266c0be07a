"""Every page of the console on a phone, 390 px wide, in a real Chromium: nothing runs
off the side, whatever the case holds (long words, long links, a full event history),
in English and in Russian."""

from __future__ import annotations

import contextlib
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.async_api import Page, async_playwright
from playwright.async_api import TimeoutError as PlaywrightTimeout

from socialcare.bot import cases, handoffs
from socialcare.bot import escalations as esc
from socialcare.bot.announcements import service as announcements
from socialcare.console import access
from socialcare.handlers.chat import service
from tests.conftest import FlowingClock
from tests.corpus.outage import outage
from tests.e2e.chat import mention, minutes_ago, running_chat
from tests.e2e.test_console_browser import ARTIFACTS, CHROMIUM_ARGS, PASSWORD, WAIT_MS
from tests.e2e.test_console_browser import chromium as chromium  # the fixture
from tests.e2e.test_incident_chat import _config as few_for_an_incident
from tests.e2e.test_incident_chat import _opened
from tests.e2e.test_incidents import OUTAGE_AT

PHONE = {"width": 390, "height": 844}
LONG_WORD = "Ну" + "у" * 100 + "!!!"
LONG_LINK = "https://forum.example.kz/viewtopic.php?f=12&t=" + "9" * 80


async def _overflow(page: Page) -> list[str]:
    """Return what sticks out past the right edge of the window, if anything does."""
    found: list[str] = await page.evaluate("""() => {
        const width = document.documentElement.clientWidth;
        const out = [];
        if (document.documentElement.scrollWidth > width) {
            out.push(`page ${document.documentElement.scrollWidth}px > ${width}px`);
        }
        for (const el of document.querySelectorAll('body *')) {
            const box = el.getBoundingClientRect();
            if (box.width && box.right > width + 0.5 && getComputedStyle(el).position !== 'fixed'
                    && !el.closest('.scroll')) {
                out.push(`${el.tagName.toLowerCase()}.${el.className} ${Math.round(box.right)}px`);
            }
        }
        return out.slice(0, 10);
    }""")
    return found


@pytest.mark.parametrize("language", ["en", "ru"])
async def test_no_page_runs_off_the_side_of_a_phone(
    tmp_path: Path, flowing_clock: FlowingClock, chromium: str, language: str
) -> None:
    def in_language(text: str) -> str:
        text = few_for_an_incident(text)
        return text.replace('language = "en"', f'language = "{language}"', 1)

    flowing_clock.current = OUTAGE_AT - timedelta(minutes=5)
    async with running_chat(tmp_path, flowing_clock, config=in_language) as chat, \
            async_playwright() as pw:
        deps = chat.deps
        await access.set_password(deps, "saule", PASSWORD)
        await chat.ingest(*next(iter(outage(OUTAGE_AT - timedelta(minutes=15),
                                            minutes_per_slot=5))).mentions[:10])
        [incident_id] = await _opened(chat)
        [busy] = await chat.ingest(mention(
            "ig-1", f"Kcell, {LONG_WORD} {LONG_LINK} третий день нет 4G в Алматы, что происходит?",
            published=minutes_ago(flowing_clock, 20)))
        await chat.ingest(mention("ig-2", "Kcell, я подам в суд", published=minutes_ago(
            flowing_clock, 3), author={"name": "Очень-длинное-имя-клиента-без-пробелов",
                                        "handle": "@" + "x" * 60}))
        case_id = busy["case_id"]
        await chat.tick(minutes=1)  # its SLA points
        await cases.claim(cases.Claim(case_id, "aigerim"), **service(deps))
        await handoffs.hand_off(handoffs.HandOff(case_id, "aigerim", "billing", LONG_WORD),
                                **service(deps))
        escalation = await esc.escalate(esc.Escalate(
            case_ids=(case_id,), actor="saule", category=esc.Category.CRITICAL,
            problem=LONG_WORD, options=(LONG_LINK,), director="nurlan"), **service(deps))
        announced = await announcements.announce(announcements.Announce(
            actor="saule", text=f"{LONG_WORD} {LONG_LINK}", keywords=(LONG_WORD[:40],)),
            **service(deps))
        link = await access.issue_link(deps, deps.team.person("saule"))  # type: ignore[arg-type]
        assert link is not None
        browser = await pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS,
                                           headless=True)
        try:
            phone = await (await browser.new_context(
                viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2,
                locale="ru-RU" if language == "ru" else "en-GB")).new_page()
            pages = {"signin": "/signin", "link": link.split(chat.base_url, 1)[1],
                     "used-link": "/signin/link/not-a-link"}
            seen = {}
            for name, path in pages.items():
                await phone.goto(chat.base_url + path)
                seen[name] = await _overflow(phone)
            await phone.goto(chat.base_url + "/signin")
            await phone.fill("input[name=person]", "saule")
            await phone.fill("input[name=password]", PASSWORD)
            await phone.click("button[type=submit]")
            await phone.wait_for_url(chat.base_url + "/")
            await phone.wait_for_selector("#live.on", timeout=WAIT_MS)
            seen["wallboard"] = await _overflow(phone)
            for name, path in (("case", f"/cases/{case_id}"), ("no-case", "/cases/99999"),
                               ("reports", "/reports?period=today"),
                               ("escalation", f"/escalations/{escalation.id}"),
                               ("incident", f"/incidents/{incident_id}"),
                               ("announcements", "/announcements"),
                               ("announcement", f"/announcements/{announced.id}")):
                await phone.goto(chat.base_url + path)
                await phone.wait_for_load_state("load")
                seen[name] = await _overflow(phone)
                ARTIFACTS.mkdir(parents=True, exist_ok=True)
                # For a person to look at, not a check: a slow full-page capture (seen
                # once past 30 s on a busy machine) does not fail the test.
                with contextlib.suppress(PlaywrightTimeout):
                    await phone.screenshot(
                        path=str(ARTIFACTS / f"phone-{name}-{language}.png"), full_page=True,
                        timeout=10_000)
        finally:
            await browser.close()

    running_off = {name: found for name, found in seen.items() if found}
    assert not running_off, "\n".join(f"{name}: {found}" for name, found in running_off.items())
    assert set(seen) == {"signin", "link", "used-link", "wallboard", "case", "no-case",
                         "reports", "escalation", "incident", "announcements", "announcement"}
