"""Reports from the chat: the same numbers in both messengers, charts, CSV, usage."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import aiohttp
import numpy as np
from matplotlib.image import imread

from socialcare.bot import cases
from socialcare.console import access
from socialcare.handlers import scheduler
from tests.conftest import FlowingClock
from tests.e2e.chat import (
    AIGERIM_SLACK,
    DANIYAR_TG,
    SAULE_SLACK,
    SAULE_TG,
    SLACK_CHANNEL,
    TELEGRAM_CHAT,
    eventually,
    mention,
    minutes_ago,
    running_chat,
)
from tests.e2e.test_console import PASSWORD, browser

SLA_RED = np.array([0xd6, 0x27, 0x28]) / 255


def _has_red_line(png: bytes) -> bool:
    pixels = imread(io.BytesIO(png))[:, :, :3]
    return bool((np.abs(pixels - SLA_RED).sum(axis=2) < 0.05).sum() > 50)


async def test_the_same_report_in_slack_and_telegram_with_charts_and_csv(
    tmp_path: Path, flowing_clock: FlowingClock
) -> None:
    async with running_chat(tmp_path, flowing_clock) as chat:
        results = await chat.ingest(
            mention("ig-1", published=minutes_ago(flowing_clock, 30)),
            mention("ig-2", "Kcell again", published=minutes_ago(flowing_clock, 10)),
            mention("f-1", "Kcell forum post", source="forums",
                    published=minutes_ago(flowing_clock, 20)),
        )
        service = {"uow": chat.deps.uow(), "clock": chat.deps.clock, "team": chat.deps.team}
        await cases.mark_answered(cases.MarkAnswered(results[1]["case_id"], "aigerim"),
                                  **service)
        await cases.mark_answered(cases.MarkAnswered(results[2]["case_id"], "daniyar"),
                                  **service)
        await chat.slack_send(chat.slack.slash_command("/report", "today csv",
                                                       user=SAULE_SLACK,
                                                       channel=SLACK_CHANNEL))
        await chat.telegram_send(chat.telegram.command_update("report", "today",
                                                              from_user=SAULE_TG))
        answer = (await eventually(lambda: chat.slack.responses()))[0].body
        slack_text = answer["blocks"][0]["elements"][0]["elements"][0]["text"]
        telegram_text = await eventually(lambda: next(
            (m.text for m in chat.telegram.bot_messages(TELEGRAM_CHAT)
             if (m.text or "").startswith("📊")), None))
        def telegram_photos() -> list:  # type: ignore[type-arg]
            return [m for m in chat.telegram.bot_messages(TELEGRAM_CHAT)
                    if m.media and m.media.get("kind") == "photo"]

        def report_files() -> dict[str, bytes]:
            return {f["name"]: f["data"] for f in chat.slack.files.values()
                    if f["name"].endswith("-today.png") or f["name"].endswith(".csv")}

        # A file is listed once announced and has its data once uploaded: wait for both.
        files = await eventually(lambda: len(report_files()) == 3
                                 and all(report_files().values()) and report_files())
        photos = await eventually(lambda: len(telegram_photos()) == 2 and telegram_photos())
        answers = [r.body["text"] for r in chat.slack.responses()[:1]]
        for command, text in (("/report", "someday"), ("/report", "2026-11-30..2026-11-01"),
                              ("/sla", "")):
            answers.append((await chat.slack_command(command, text,
                                                     user=SAULE_SLACK)).body["text"])

    assert slack_text == telegram_text
    assert slack_text.startswith("📊 Report 25.11.2026 (today): 3 cases, 0% dismissed")
    # Answered after 10 and 20 minutes; the third, 30 minutes old, missed its 15.
    assert "Reaction: median 15 min · p90 19 min · within SLA 67% (2 met, 1 missed, 0 pending)" \
        in slack_text
    assert "SLA breaches: 1 — worst: #1 (+15 min) https://www.instagram.com/p/ig-1" in slack_text
    assert _has_red_line(files["reaction-today.png"])
    assert files["volume-today.png"].startswith(b"\x89PNG")
    rows = list(csv.DictReader(io.StringIO(files["cases-today.csv"].decode("utf-8-sig"))))
    assert len(rows) == 3
    assert sorted(r["sla"] for r in rows) == ["met", "met", "missed"]
    assert len(photos) == 2
    assert answers[1].startswith("Usage: /report") and answers[2].startswith("Usage: /report")
    assert answers[3].startswith("⏱ The queue now:")
    assert "Social networks (15 min): 2 open" in answers[3]


async def test_the_daily_report_goes_out_once_at_its_time(
    tmp_path: Path, flowing_clock: FlowingClock
) -> None:
    async with running_chat(tmp_path, flowing_clock) as chat:
        # 15:00 in Almaty: past 09:00, so yesterday's report is due at start.
        posted = await eventually(lambda: [m for m in chat.slack.messages("C0REPORTS0")
                                           if m.text.startswith("📊")])
        charts = await eventually(lambda: len([m for m in chat.slack.messages("C0REPORTS0")
                                               if m.files]) == 2)
        again = await scheduler.post_due_reports(chat.deps)

    assert posted[0].text.startswith("📊 Report 24.11.2026 (yesterday): 0 cases")
    assert charts and again == []


async def test_metrics_count_mentions_cards_sla_points_and_messenger_calls(
    tmp_path: Path, flowing_clock: FlowingClock
) -> None:
    async with running_chat(tmp_path, flowing_clock) as chat:
        chat.slack.fail_next("chat.postMessage", 429, retry_after=1)
        await chat.ingest(mention("ig-1", published=minutes_ago(flowing_clock, 20)),
                          mention("ig-2", "nothing about us", published=minutes_ago(
                              flowing_clock, 1)))
        await eventually(lambda: chat.slack_cards() and chat.telegram_cards(), within=15)
        await scheduler.count_open(chat.deps)
        # The app's own scheduler fires the breach (published 20 minutes ago) and counts it.
        await eventually(lambda: chat.deps.telemetry.registry.get_sample_value(
            "socialcare_sla_points_total",
            {"tier": "main", "clock": "response", "point": "breach"}) == 1)
        # A card's time is counted when its round ends, after the card is in the chat.
        await eventually(lambda: chat.deps.telemetry.registry.get_sample_value(
            "socialcare_time_to_card_seconds_count", {"messenger": "telegram", "tier": "main"}))
        async with aiohttp.ClientSession() as session, session.get(
                f"{chat.base_url}/metrics") as response:
            metrics = await response.text()

    for line in (
        'socialcare_mentions_total{outcome="created",reason="",source="webhook"} 1.0',
        'socialcare_mentions_total{outcome="dropped",reason="no brand matched",source="webhook"}'
        ' 1.0',
        'socialcare_messenger_calls_total{messenger="slack",method="chat_postMessage",'
        'outcome="rate_limited"} 1.0',
        'socialcare_time_to_card_seconds_count{messenger="telegram",tier="main"} 1.0',
        'socialcare_sla_points_total{clock="response",point="breach",tier="main"} 1.0',
        'socialcare_cases{state="new"} 1.0',
        'socialcare_open_cases{tier="main"} 1.0',
        "socialcare_card_queue_lag_seconds",
    ):
        assert line in metrics, line


async def test_an_agents_figures_and_usage_for_nobody(
    tmp_path: Path, flowing_clock: FlowingClock
) -> None:
    async with running_chat(tmp_path, flowing_clock) as chat:
        results = await chat.ingest(
            mention("ig-1", published=minutes_ago(flowing_clock, 12)),
            mention("ig-2", "Kcell again", published=minutes_ago(flowing_clock, 20)),
        )
        service = {"uow": chat.deps.uow(), "clock": chat.deps.clock, "team": chat.deps.team}
        for result in results:
            await cases.mark_answered(cases.MarkAnswered(result["case_id"], "aigerim"),
                                      **service)
        own = await chat.slack_command("/agent", "today", user=AIGERIM_SLACK)
        other = await chat.slack_command("/agent", "@daniyar week", user=SAULE_SLACK)
        nobody = await chat.slack_command("/agent", "@ghost", user=SAULE_SLACK)

    assert own.body["text"].startswith(
        "👤 Aigerim, 25.11.2026: answered 2 cases first · reaction median 16 min, p90 19 min"
        " · within SLA 50% (1 met, 1 missed)")
    assert other.body["text"].startswith("Daniyar answered no case first in 23.11–25.11.2026")
    assert nobody.body["text"].startswith("Usage: /agent")


async def test_the_team_figures_follow_one_rule_in_the_chat_and_the_console(
    tmp_path: Path, flowing_clock: FlowingClock
) -> None:
    async with running_chat(tmp_path, flowing_clock) as chat:
        await chat.ingest(mention("ig-1", published=minutes_ago(flowing_clock, 5)))
        agent = [(await chat.slack_command(command, text, user=AIGERIM_SLACK)).body["text"]
                 for command, text in (("/report", "today"), ("/digest", ""),
                                       ("/escalations", ""), ("/agent", "@daniyar"),
                                       ("/agent", "today"), ("/queue", ""), ("/sla", ""))]
        await chat.telegram_send(chat.telegram.command_update("report", "today",
                                                              from_user=DANIYAR_TG))
        in_telegram = await eventually(lambda: [
            m.text for m in chat.telegram.bot_messages(TELEGRAM_CHAT)
            if (m.text or "").startswith("The team's figures")])
        lead = [(await chat.slack_command(command, text, user=SAULE_SLACK)).body["text"]
                for command, text in (("/report", "today"), ("/escalations", ""),
                                      ("/agent", "@aigerim"))]
        pages = {}
        for person in ("aigerim", "saule", "nurlan", "gulnara"):
            await access.set_password(chat.deps, person, PASSWORD)
            async with browser(chat.base_url) as visitor:
                assert await visitor.sign_in(person) == 303
                pages[person] = (await visitor.get("/reports"))[0]

    refused = "The team's figures are for shift leads, directors and admins"
    assert [text.startswith(refused) for text in agent] == [True] * 4 + [False] * 3
    assert agent[4].startswith("Aigerim answered no case first")
    assert len(in_telegram) == 1
    assert lead[0].startswith("📊 Report") and lead[1].startswith("No escalations")
    assert lead[2].startswith("Aigerim answered no case first")
    assert pages == {"aigerim": 403, "saule": 200, "nurlan": 200, "gulnara": 403}
    team = chat.deps.team
    assert [p.id for p in team.people if p.reads_team_figures] == ["saule", "nurlan", "askar",
                                                                  "admin"]
