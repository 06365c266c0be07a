"""Announcements in the domain: audiences, parsing, matching, views, receipts, figures."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from socialcare.bot.actions import (
    ActionKind,
    AnnouncementAction,
    AnnouncementActionKind,
    BadAction,
    CaseAction,
)
from socialcare.bot.announcements.audiences import Audience, AudienceChannel, Member
from socialcare.bot.announcements.figures import period_figures, standings
from socialcare.bot.announcements.model import (
    Announcement,
    AnnouncementState,
    Copy,
    Outlet,
    Receipt,
)
from socialcare.bot.announcements.official import OfficialAnswers, names_keywords
from socialcare.bot.announcements.service import copies_for, resolve_audiences
from socialcare.bot.announcements.views import mail_for, render_copy, webhook_body
from socialcare.bot.errors import DomainError
from socialcare.bot.team import Channel, Team
from socialcare.handlers.announcing import BadAnnouncement, parse_announce
from socialcare.settings import load_catalog
from tests.conftest import T0, make_team

EN = load_catalog("en")
CALLS = Audience(
    name="call_centre", title="Call centre",
    channels=(AudienceChannel(messenger="slack", id="C0CALLS"),
              AudienceChannel(messenger="telegram", id="-100111")),
    webhook_url="https://kb.example.com/hook",
    members=(Member(name="Dana", slack="U0DANA", telegram=11), Member(name="Erlan", telegram=12)),
)
SHOPS = Audience(name="shops", channels=(AudienceChannel(messenger="slack", id="C0CARE"),),
                 emails=("Shops@Example.com",), members=(Member(name="Gulmira", slack="U0GUL"),))
LABELS = {"keywords": "keywords", "topics": "topics", "until": "until", "слова": "keywords"}


def _team() -> Team:
    return make_team(audiences=(CALLS, SHOPS))


def _announcement(**changes: Any) -> Announcement:
    values: dict[str, Any] = {"text": "The Almaty outage is fixed", "author": "saule",
                              "created_at": T0, "audiences": ("team", "call_centre", "shops"),
                              "id": 3}
    values.update(changes)
    return Announcement(**values)


# ── Audiences in the config ─────────────────────────────────────────────────────────

@pytest.mark.parametrize(("raw", "problem"), [
    ({"name": "all", "emails": ["a@example.com"]}, "reserved"),
    ({"name": "team", "emails": ["a@example.com"]}, "reserved"),
    ({"name": "Call Centre", "emails": ["a@example.com"]}, "not like"),
    ({"name": "shops"}, "at least one"),
    ({"name": "shops", "emails": ["shops@example.com\nBcc: x@evil.example"]}, "not an e-mail"),
    ({"name": "shops", "emails": ["a@example.com, b@example.com"]}, "not an e-mail"),
    ({"name": "shops", "webhook_url": "ftp://kb.example.com"}, "http"),
    ({"name": "shops", "emails": ["a@example.com"], "members": [{"name": "Dana"}]},
     "at least one user id"),
    ({"name": "shops", "emails": ["a@example.com"], "extra": 1}, "Unexpected keyword"),
])
def test_an_audience_the_config_gets_wrong_is_refused_naming_the_problem(
    raw: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ValidationError, match=problem):
        TypeAdapter(Audience).validate_python(raw)


def test_two_audiences_of_one_name_are_refused() -> None:
    with pytest.raises(ValueError, match="appears twice"):
        make_team(audiences=(SHOPS, SHOPS))


def test_audience_chats_are_the_teams_own_and_never_collected() -> None:
    assert {"-100111"} <= _team().own_chats("telegram")


# ── Who hears it ────────────────────────────────────────────────────────────────────

def test_the_team_always_hears_it_and_all_means_every_audience() -> None:
    team = _team()

    assert resolve_audiences(team, []) == ("team",)
    assert resolve_audiences(team, ["shops", "Shops", "call_centre"]) == (
        "team", "shops", "call_centre")
    assert resolve_audiences(team, ["all"]) == ("team", "call_centre", "shops")
    with pytest.raises(DomainError) as unknown:
        resolve_audiences(team, ["shop"])
    assert unknown.value.params == {"name": "shop", "audiences": "all, call_centre, shops"}


def test_a_place_two_audiences_share_gets_one_copy_for_the_first() -> None:
    copies = copies_for(_team(), ("team", "call_centre", "shops"), at=T0)

    assert [(c.audience, c.outlet.value, c.address) for c in copies] == [
        ("team", "slack", "C0CARE"),
        ("call_centre", "slack", "C0CALLS"), ("call_centre", "telegram", "-100111"),
        ("call_centre", "webhook", "https://kb.example.com/hook"),
        ("shops", "email", "shops@example.com"),
    ]
    assert all(c.next_try_at == T0 and c.revision_sent == 0 for c in copies)


# ── /announce's words ──────────────────────────────────────────────────────────────

def _parse(args: str) -> Any:
    return parse_announce(args, team=_team(), labels=LABELS, now=T0)


def test_the_first_word_names_audiences_only_when_it_is_a_list_or_a_known_name() -> None:
    assert _parse("call_centre,shops Fixed").audiences == ("call_centre", "shops")
    assert _parse("all Fixed").audiences == ("all",)
    assert _parse("shops Fixed").audiences == ("shops",)
    # Audience names are lower case: a sentence that starts with one is a sentence.
    plain = _parse("Shops are closed at 18:00 today")
    assert plain.audiences == () and plain.text == "Shops are closed at 18:00 today"
    # A list with a typo is still a list: the domain names the unknown audience.
    assert _parse("call_centre,shop Fixed").audiences == ("call_centre", "shop")


def test_sections_after_bars_name_keywords_topics_and_the_end_and_other_bars_are_text() -> None:
    parsed = _parse("shops Use A | B wording | keywords: 4G, Almaty outage, 4G | слова: Алматы"
                    " | topics: network | until: 2026-11-25 18:00")

    assert parsed.text == "Use A | B wording"
    assert parsed.keywords == ("Алматы",)  # the last keywords section wins
    assert parsed.topics == ("network",)
    assert parsed.until is not None and parsed.until.isoformat() == "2026-11-25T18:00:00+05:00"
    assert _parse("Fixed | until: 18:30").until.isoformat() == "2026-11-25T18:30:00+05:00"
    assert _parse("Fixed | until: 2026-11-26").until.isoformat() == "2026-11-27T00:00:00+05:00"
    with pytest.raises(BadAnnouncement):
        _parse("Fixed | until: soon")
    with pytest.raises(BadAnnouncement):
        _parse("Fixed | until: 25:00")


# ── Official answers ───────────────────────────────────────────────────────────────

def test_keywords_match_as_the_mention_matcher_does_whole_words_any_alphabet() -> None:
    assert names_keywords(("4G", "Almaty outage"), "Kcell, no 4G in Almaty!")
    assert names_keywords(("Almaty outage",), "the ALMATY   outage again")
    assert names_keywords(("kcell",), "Кcell")  # a Cyrillic look-alike letter
    assert not names_keywords(("4G",), "4Gbps tariff")
    assert not names_keywords((), "anything")


def test_the_newest_announcement_in_force_answers_and_ended_ones_do_not() -> None:
    older = _announcement(id=1, keywords=("4G",), text="older")
    newer = _announcement(id=2, keywords=("4G",), text="newer", created_at=T0 + timedelta(1))
    ended = _announcement(id=3, keywords=("4G",), created_at=T0 + timedelta(2),
                          state=AnnouncementState.WITHDRAWN)
    past = _announcement(id=4, keywords=("4G",), until=T0 + timedelta(hours=1),
                         created_at=T0 + timedelta(3))
    on_topic = _announcement(id=5, topics=("Network",), text="topic")
    answers = OfficialAnswers([older, newer, ended, past, on_topic], now=T0 + timedelta(4))

    found = answers.for_case("no 4G again")
    assert found is not None and (found.announcement_id, found.text) == (2, "newer")
    topic = answers.for_case("nothing in common", topics=("network",))
    assert topic is not None and topic.announcement_id == 5
    assert answers.for_case("all fine") is None


# ── What each place says ───────────────────────────────────────────────────────────

def test_a_chat_copy_offers_got_it_only_while_in_force() -> None:
    team = _team()
    live = render_copy(_announcement(until=T0 + timedelta(hours=3)), team=team, catalog=EN,
                       now=T0)
    corrected = render_copy(_announcement(corrected_at=T0, revision=2), team=team,
                            catalog=EN, now=T0)
    withdrawn = render_copy(_announcement(state=AnnouncementState.WITHDRAWN, ended_at=T0,
                                          ended_by="saule"), team=team, catalog=EN, now=T0)
    lapsed = render_copy(_announcement(until=T0), team=team, catalog=EN, now=T0)

    assert live.title == "📣 Announcement #3 · Saule" and live.status == (
        "In force until 18:00",)
    assert [b.action.pack() for b in live.buttons] == ["sc1a:ack:3"]
    assert corrected.status == ("✏️ Corrected at 15:00", "In force until withdrawn")
    assert withdrawn.status == ("🚫 Withdrawn at 15:00 by Saule",) and not withdrawn.buttons
    assert lapsed.status == ("⌛ Ended at 15:00",) and not lapsed.buttons
    assert live.fallback == "📣 Saule: The Almaty outage is fixed"


def _mailbox(**changes: Any) -> Copy:
    return replace(Copy(announcement_id=3, audience="shops", outlet=Outlet.EMAIL,
                        address="shops@example.com", next_try_at=T0), **changes)


def test_a_mailbox_gets_the_announcement_then_its_correction_or_withdrawal_only() -> None:
    team = _team()

    def mail(copy: Copy, **changes: Any) -> Any:
        return mail_for(_announcement(**changes), copy, team=team, catalog=EN, now=T0)

    first = mail(_mailbox())
    corrected = mail(_mailbox(revision_sent=1), revision=2, corrected_at=T0)
    withdrawn = mail(_mailbox(revision_sent=1), revision=2,
                     state=AnnouncementState.WITHDRAWN, ended_at=T0, ended_by="saule")

    assert first.subject == "📣 Announcement #3: The Almaty outage is fixed"
    assert first.follows is None and first.to == "shops@example.com"
    assert "To: shops" in first.details
    assert corrected.subject.startswith("✏️ Correction to announcement #3")
    assert corrected.follows == first.key and corrected.key != first.key
    assert withdrawn.subject == "🚫 Withdrawn: announcement #3"
    # Nothing to tell: it ended by its time, or before the first mail went.
    assert mail(_mailbox(revision_sent=1), revision=2, until=T0,
                state=AnnouncementState.EXPIRED) is None
    assert mail(_mailbox(), state=AnnouncementState.WITHDRAWN, revision=2) is None


def test_a_webhook_hears_each_revision_with_a_delivery_id_to_dedupe_retries() -> None:
    team = _team()
    hook = Copy(announcement_id=3, audience="call_centre", outlet=Outlet.WEBHOOK,
                address="https://kb.example.com/hook", next_try_at=T0)
    body = webhook_body(_announcement(keywords=("4G",)), hook, team=team, catalog=EN, now=T0)
    ended = webhook_body(_announcement(state=AnnouncementState.WITHDRAWN, revision=2,
                                       ended_at=T0), replace(hook, revision_sent=1), team=team,
                         catalog=EN, now=T0)

    assert body is not None and ended is not None
    assert (body["event"], body["delivery"], body["state"]) == (
        "announcement.published", "3-call_centre-1", "active")
    assert body["author"] == "Saule" and body["keywords"] == ["4G"]
    assert (ended["event"], ended["delivery"], ended["state"]) == (
        "announcement.withdrawn", "3-call_centre-2", "withdrawn")
    assert webhook_body(_announcement(state=AnnouncementState.WITHDRAWN), hook, team=team,
                        catalog=EN, now=T0) is None


# ── Receipts and figures ───────────────────────────────────────────────────────────

def _receipt(messenger: str, user: str, channel: str, name: str = "?") -> Receipt:
    return Receipt(3, messenger, user, name, channel, T0)


def test_got_it_counts_members_by_any_of_their_ids_and_others_in_the_audiences_chats() -> None:
    team = _team()
    receipts = [_receipt("telegram", "11", "-100111"), _receipt("slack", "U0DANA", "C0CALLS"),
                _receipt("telegram", "555", "-100111", "Stranger"),
                _receipt("slack", "U0OTHER", "C0ELSEWHERE", "Elsewhere"),
                _receipt("slack", "U0AIGERIM", "C0CARE", "Aigerim A.")]
    stands = {s.name: s for s in standings(_announcement(), [], receipts, team=team)}

    calls = stands["call_centre"]
    assert calls.acknowledged == ("Dana",) and calls.others == ("Stranger",)
    assert [m.name for m in calls.missing] == ["Erlan"] and calls.members == 2
    team_stand = stands["team"]
    assert team_stand.acknowledged == ("Aigerim",)
    assert [m.name for m in team_stand.missing] == ["Daniyar", "Saule"]  # they work cases
    assert stands["shops"].others == ("Aigerim A.",)  # pressed in C0CARE, a shops chat too


def test_a_periods_figures_count_each_member_once_in_chat_audiences_only() -> None:
    team = make_team(audiences=(CALLS, replace(SHOPS, channels=())),
                     channels=(Channel(messenger="slack", id="C0CARE"),))
    announcement = _announcement()
    copies = copies_for(team, announcement.audiences, at=T0)
    figures = period_figures([announcement], {3: copies},
                             {3: [_receipt("telegram", "11", "-100111")]}, {3: 4}, team=team)

    [figure] = figures
    # Team: Aigerim, Daniyar, Saule; call centre: Dana, Erlan; shops mails only.
    assert (figure.members, figure.acknowledged, figure.answered) == (5, 1, 4)
    assert figure.acknowledged_share == pytest.approx(0.2)


# ── The action codec ───────────────────────────────────────────────────────────────

def test_buttons_carry_announcements_within_telegrams_64_bytes() -> None:
    biggest = 10**18 - 1
    offer = CaseAction(ActionKind.OFFICIAL_SEND, biggest, biggest)
    got_it = AnnouncementAction(AnnouncementActionKind.GOT_IT, biggest)

    assert len(offer.pack().encode()) <= 64 and CaseAction.unpack(offer.pack()) == offer
    assert AnnouncementAction.unpack(got_it.pack()) == got_it
    for forged in ("sc1a:ack:0", "sc1a:nope:3", "sc1a:ack:3:1", "sc1:ack:3"):
        with pytest.raises(BadAction):
            AnnouncementAction.unpack(forged)
