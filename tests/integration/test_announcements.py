"""Announcements on real storage: copies delivered once by racing processes, kept due
through a correction, retried and given up; receipts and answers recorded once."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import pytest

from socialcare.bot import cases
from socialcare.bot.announcements import service
from socialcare.bot.announcements.audiences import Audience, Member
from socialcare.bot.announcements.delivery import GIVE_UP_AFTER, Deliverer, Outlets
from socialcare.bot.announcements.model import AnnouncementState, Outlet
from socialcare.bot.announcements.official import OfficialAnswers
from socialcare.bot.announcements.ports import Mail, MailFailed
from socialcare.bot.errors import DomainError
from socialcare.bot.pipeline import Pipeline
from socialcare.bot.ports import DeliveryFailed
from socialcare.bot.team import Channel, Team, Topic
from socialcare.settings import load_catalog
from socialcare.storage.budgets import RedisRateBudgets
from socialcare.storage.database import SqlUnitOfWork
from tests.conftest import FakeClock, Storage, make_team
from tests.mentions import mention

EN = load_catalog("en")
SHOPS = Audience(name="shops", emails=("a@example.com", "b@example.com"),
                 webhook_url="https://kb.example.com/hook",
                 members=(Member(name="Gulmira", slack="U0GUL"),))


def _team() -> Team:
    return make_team(channels=(), audiences=(SHOPS,))


class Mailbox:
    """A mailer that keeps what it sends; it may fail, or wait to be let through."""

    def __init__(self, *, failing: bool = False) -> None:
        self.sent: list[Mail] = []
        self.failing = failing
        self.gate: asyncio.Event | None = None
        self.waiting = asyncio.Event()

    async def send(self, mail: Mail) -> None:
        if self.gate is not None:
            self.waiting.set()
            await self.gate.wait()
        if self.failing:
            raise MailFailed("mail.example.com: 421 try again later")
        await asyncio.sleep(0.01)  # another process may look meanwhile
        self.sent.append(mail)


class Hook:
    """A webhook that keeps what it is sent."""

    def __init__(self) -> None:
        self.taken: list[Mapping[str, Any]] = []

    async def post(self, url: str, body: Mapping[str, Any]) -> None:
        if not url.startswith("https://"):
            raise DeliveryFailed("not https")
        self.taken.append(body)


def _deliverer(storage: Storage, team: Team, clock: FakeClock, mailer: Mailbox, hook: Hook,
               *, engine: Any = None) -> Deliverer:
    engine = engine or storage.engine
    return Deliverer(team, EN, uow=lambda: SqlUnitOfWork(engine), clock=clock,
                     outlets=Outlets(messengers={}, budgets=RedisRateBudgets(storage.redis),
                                     mailer=mailer, webhooks=hook))


async def _announce(storage: Storage, team: Team, clock: FakeClock, **extra: Any) -> int:
    made = await service.announce(service.Announce(actor="saule", text="Outage fixed",
                                                   audiences=("shops",), **extra),
                                  uow=storage.uow(), clock=clock, team=team)
    assert made.id is not None
    return made.id


async def test_two_processes_delivering_at_once_send_each_copy_once(
    storage: Storage, clock: FakeClock
) -> None:
    team = _team()
    await _announce(storage, team, clock)
    mailer, hook = Mailbox(), Hook()
    first = _deliverer(storage, team, clock, mailer, hook)
    second = _deliverer(storage, team, clock, mailer, hook, engine=storage.new_engine())

    rounds = await asyncio.gather(first.deliver(), second.deliver(), first.deliver())
    again = await first.deliver()

    assert sorted(m.to for m in mailer.sent) == ["a@example.com", "b@example.com"]
    assert len(hook.taken) == 1 and hook.taken[0]["event"] == "announcement.published"
    assert sum(len(r.reached) for r in rounds) == 3 and not again.busy


async def test_a_correction_while_a_mail_is_on_its_way_keeps_that_copy_due(
    storage: Storage, clock: FakeClock
) -> None:
    team = make_team(channels=(), audiences=(Audience(name="shops", emails=("a@example.com",)),))
    announcement_id = await _announce(storage, team, clock)
    mailer = Mailbox()
    mailer.gate = asyncio.Event()
    deliverer = _deliverer(storage, team, clock, mailer, Hook())

    on_its_way = asyncio.create_task(deliverer.deliver())
    await mailer.waiting.wait()
    await service.correct(service.Correct(announcement_id, "saule", "Outage fixed at 14:00"),
                          uow=storage.uow(), clock=clock, team=team)
    mailer.gate.set()
    await on_its_way
    await deliverer.deliver()

    first, correction = mailer.sent
    assert first.follows is None and "Correction" in correction.subject
    assert correction.body == "Outage fixed at 14:00" and correction.follows == first.key
    async with storage.uow() as uow:
        [copy] = (await uow.announcements.copies_of([announcement_id]))[announcement_id]
    assert copy.revision_sent == 2 and copy.next_try_at is None


async def test_a_failing_mailbox_backs_off_gives_up_and_its_author_is_told_twice(
    storage: Storage, clock: FakeClock
) -> None:
    team = make_team(channels=(), audiences=(Audience(name="shops", emails=("a@example.com",)),))
    announcement_id = await _announce(storage, team, clock)
    deliverer = _deliverer(storage, team, clock, Mailbox(failing=True), Hook())
    waits = []
    for _ in range(GIVE_UP_AFTER):
        await deliverer.deliver()
        async with storage.uow() as uow:
            [copy] = (await uow.announcements.copies_of([announcement_id]))[announcement_id]
        if copy.next_try_at is not None:
            waits.append(copy.next_try_at - clock.now())
            clock.current = copy.next_try_at
    async with storage.uow() as uow:
        notices = await uow.notices.pending(messengers=["slack", "telegram"], limit=50)

    assert waits[:4] == [timedelta(seconds=30), timedelta(seconds=60),
                         timedelta(seconds=120), timedelta(seconds=240)]
    assert max(waits) == timedelta(hours=1)
    assert copy.gave_up_at is not None and copy.attempts == GIVE_UP_AFTER
    assert copy.last_error == "mail.example.com: 421 try again later"
    # Saule (the author) is in Slack only: told at the first failure and at giving up.
    assert [(n.recipient, n.key) for n in notices] == [
        ("U0SAULE", "announcement.notice.failing"), ("U0SAULE", "announcement.notice.gave_up")]


async def test_an_announcement_ends_at_its_time_once_and_mailboxes_are_not_told(
    storage: Storage, clock: FakeClock
) -> None:
    team = _team()
    announcement_id = await _announce(storage, team, clock, until=clock.now() + timedelta(hours=2))
    mailer, hook = Mailbox(), Hook()
    deliverer = _deliverer(storage, team, clock, mailer, hook)
    await deliverer.deliver()
    clock.advance(hours=2)

    ended = await asyncio.gather(*(service.expire_due(uow=storage.uow(), clock=clock)
                                   for _ in range(3)))
    await deliverer.deliver()
    async with storage.uow() as uow:
        announcement = await uow.announcements.get(announcement_id)
        in_force = await uow.announcements.in_force(clock.now())

    assert sum(len(e) for e in ended) == 1
    assert announcement.state is AnnouncementState.EXPIRED and announcement.revision == 2
    assert len(mailer.sent) == 2 and [b["event"] for b in hook.taken] == [
        "announcement.published", "announcement.expired"]
    assert in_force == []


async def test_fifty_got_its_at_once_record_each_person_once(
    storage: Storage, clock: FakeClock
) -> None:
    team = make_team(channels=(Channel(messenger="slack", id="C0CARE"),))
    announcement_id = await _announce(storage, make_team(
        channels=team.channels, audiences=(SHOPS,)), clock)
    async with storage.uow() as uow:
        [chat] = [c for c in (await uow.announcements.copies_of([announcement_id]))[
            announcement_id] if c.outlet is Outlet.SLACK]
        await uow.announcements.posted(chat, message_id="1700000000.000100")
        await uow.commit()

    async def press(user: int) -> bool:
        done = await service.acknowledge(service.Acknowledge(
            announcement_id, "slack", "C0CARE", f"U{user}", f"User {user}"),
            uow=SqlUnitOfWork(storage.engine), clock=clock)
        return done.new

    new = await asyncio.gather(*(press(i % 10) for i in range(50)))
    async with storage.uow() as uow:
        receipts = (await uow.announcements.receipts([announcement_id]))[announcement_id]
    with pytest.raises(DomainError, match="Not an announcement"):
        await service.acknowledge(service.Acknowledge(
            announcement_id, "slack", "C0ELSEWHERE", "U1", "User 1"),
            uow=storage.uow(), clock=clock)

    assert sum(new) == 10 and len(receipts) == 10


async def test_a_case_answered_with_it_twice_counts_once_and_a_withdrawn_one_is_refused(
    storage: Storage, clock: FakeClock
) -> None:
    team = make_team(channels=(), audiences=(SHOPS,))
    [result] = await Pipeline(team, clock=clock).ingest([mention(1)], uow=storage.uow())
    announcement_id = await _announce(storage, team, clock, keywords=("4G",))

    class Publishes:
        async def publish(self, source: Any, to: Any, text: str) -> Any:
            from socialcare.bot.ports import Published
            return Published()

    for _ in range(2):
        await cases.reply(cases.Reply(result.case_id, "aigerim", "Outage fixed", announcement_id),
                          uow=storage.uow(), clock=clock, team=team,
                          publishers={"webhook": Publishes()})
    await service.withdraw(service.Withdraw(announcement_id, "saule"), uow=storage.uow(),
                           clock=clock, team=team)
    with pytest.raises(DomainError, match="no longer in force"):
        await cases.reply(cases.Reply(result.case_id, "aigerim", "Outage fixed", announcement_id),
                          uow=storage.uow(), clock=clock, team=team,
                          publishers={"webhook": Publishes()})
    async with storage.uow() as uow:
        answered = await uow.announcements.answered([announcement_id])
        events = await uow.events.for_case(result.case_id)

    assert answered == {announcement_id: 1}
    assert [e.data.get("announcement") for e in events if e.kind.value == "agent_message"] == [
        announcement_id, announcement_id]


async def test_announcing_puts_the_cards_of_open_cases_it_answers_out_of_step(
    storage: Storage, clock: FakeClock
) -> None:
    team = make_team(audiences=(SHOPS,))
    results = await Pipeline(team, clock=clock).ingest(
        [mention(1), mention(2, "Kcell, my bill is wrong")], uow=storage.uow())
    async with storage.uow() as uow:
        for card in await uow.cards.due(clock.now(), messengers=["slack"], per_channel=10,
                                        limit=10):
            await uow.cards.synced(card, seq=card.change_seq, fingerprint="x", next_due=None)
        await uow.commit()
    clock.advance(minutes=1)
    announcement_id = await _announce(storage, team, clock, keywords=("4G",))
    async with storage.uow() as uow:
        due = await uow.cards.due(clock.now(), messengers=["slack"], per_channel=10, limit=10)
    await service.withdraw(service.Withdraw(announcement_id, "saule"), uow=storage.uow(),
                           clock=clock, team=team)

    assert [c.case_id for c in due] == [results[0].case_id]


async def test_an_announcement_naming_a_topic_answers_the_cases_of_that_topic_whatever_words(
    storage: Storage, clock: FakeClock
) -> None:
    billing = Topic(name="billing", title="Billing", keywords=("счёт", "bill"))
    team = make_team(audiences=(SHOPS,), topics=(billing,))
    results = await Pipeline(team, clock=clock).ingest(
        [mention(1), mention(2, "Kcell, за что списали со счёта?")], uow=storage.uow())
    async with storage.uow() as uow:
        for card in await uow.cards.due(clock.now(), messengers=["slack"], per_channel=10,
                                        limit=10):
            await uow.cards.synced(card, seq=card.change_seq, fingerprint="x", next_due=None)
        await uow.commit()
    clock.advance(minutes=1)
    announcement_id = await _announce(storage, team, clock, topics=("billing",))
    async with storage.uow() as uow:
        due = await uow.cards.due(clock.now(), messengers=["slack"], per_channel=10, limit=10)
        announcement = await uow.announcements.get(announcement_id)
        case = await uow.cases.get(results[1].case_id)

    assert case.topics == ("billing",)
    assert [c.case_id for c in due] == [results[1].case_id]
    assert OfficialAnswers([announcement], now=clock.now()).for_case(
        "Kcell, за что списали со счёта?", case.topics) is not None


async def test_an_announcements_keywords_are_matched_in_their_word_forms(
    storage: Storage, clock: FakeClock
) -> None:
    team = make_team(audiences=(SHOPS,))
    announcement_id = await _announce(storage, team, clock, keywords=("роуминг",))
    async with storage.uow() as uow:
        announcement = await uow.announcements.get(announcement_id)
    answers = OfficialAnswers([announcement], now=clock.now())

    assert answers.for_case("Kcell, в роуминге нет связи") is not None
    assert answers.for_case("Kcell, роумингте байланыс жоқ") is not None
    assert answers.for_case("Kcell, роумингофон") is None


async def test_socialcare_itself_may_announce_and_nobody_else_outside_the_leads(
    storage: Storage, clock: FakeClock
) -> None:
    team = _team()
    made = await service.announce(service.Announce(actor="system", text="Incident answer",
                                                   audiences=("all",)),
                                  uow=storage.uow(), clock=clock, team=team)
    with pytest.raises(DomainError, match="Only shift leads"):
        await service.announce(service.Announce(actor="aigerim", text="Mine"),
                               uow=storage.uow(), clock=clock, team=team)
    with pytest.raises(DomainError, match="Not in the roster"):
        await service.announce(service.Announce(actor="stranger", text="Mine"),
                               uow=storage.uow(), clock=clock, team=team)

    assert made.author == "system" and made.audiences == ("team", "shops")
