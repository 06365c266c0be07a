"""Slack and Telegram fail 30 % of the calls — 5xx, 429 with Retry-After or
parameters.retry_after, timeouts — and still every card arrives once and shows its
case's last state."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from pathlib import Path
from typing import Any

from socialcare.bot import cases
from tests.conftest import FlowingClock
from tests.e2e.chat import Chat, mention, minutes_ago, running_chat

# One Slack channel and one Telegram group per network, as a team with a desk per
# network has them: each has its own rate limits (Telegram: 20 messages a minute per
# group), so that 30 cards and their edits fit in the test's time.
NETWORKS = {
    "instagram": ("C0CAREINST", -1001000000001),
    "facebook": ("C0CAREFACE", -1001000000002),
    "vk": ("C0CAREVKON", -1001000000003),
    "x": ("C0CAREXXXX", -1001000000004),
    "youtube": ("C0CAREYOUT", -1001000000005),
}
PER_NETWORK = 6
CHAOS = 0.3
# Slack finds a card whose post was applied but unanswered by its case id (message
# metadata), so it gets lost responses too. The Bot API cannot look a message up, so a
# sendMessage whose answer is lost is posted again: Telegram gets faults that change
# nothing (5xx, 429, a request swallowed unanswered).
SLACK_FAULTS = ("ratelimited", "server_error", "timeout", "lost_response")
TELEGRAM_FAULTS = ("ratelimited", "server_error", "timeout")
# Usually 10-20 s; a card that fails several times running backs off 1, 2, 4, 8… s and
# holds its channel meanwhile, by design, so the tail is long.
SETTLE_WITHIN = 100.0

Place = tuple[str, str, int]  # messenger, channel, case id


def per_network_channels(text: str) -> str:
    """Replace the config's channels with a Slack channel and a Telegram group for
    each network."""
    text, dropped = re.subn(r"^\[\[channels\]\]\n(?:\w+ = .*\n)*", "", text, flags=re.M)
    assert dropped, "the config has no channels to replace"
    return text + "".join(
        f'\n[[channels]]\nmessenger = "slack"\nid = "{slack}"\nplatforms = ["{network}"]\n'
        f'\n[[channels]]\nmessenger = "telegram"\nid = "{telegram}"\n'
        f'platforms = ["{network}"]\n'
        for network, (slack, telegram) in NETWORKS.items()
    )


def slack_cards(chat: Chat, channel: str) -> dict[int, list[Any]]:
    """Return the card messages of a Slack channel by case id (from their metadata)."""
    found: dict[int, list[Any]] = {}
    for message in chat.slack.messages(channel, include_replies=False):
        metadata = message.metadata or {}
        if metadata.get("event_type") == "socialcare_case":
            found.setdefault(metadata["event_payload"]["case_id"], []).append(message)
    return found


def telegram_cards(chat: Chat, chat_id: int) -> dict[int, list[Any]]:
    """Return the card messages of a Telegram group by case id (from their title)."""
    found: dict[int, list[Any]] = {}
    for message in chat.telegram.bot_messages(chat_id):
        if message.reply_to_message_id is None and (head := re.match(r"#(\d+)\b",
                                                                     message.text or "")):
            found.setdefault(int(head.group(1)), []).append(message)
    return found


def state_line(text: str) -> str:
    """Return the state line of a Telegram card's text."""
    return next(line for line in text.splitlines()
                if line.startswith(("Unclaimed", "Claimed", "Answered")))


async def test_every_card_arrives_once_and_shows_the_last_state_when_a_third_of_calls_fail(
    tmp_path: Path, flowing_clock: FlowingClock
) -> None:
    loop = asyncio.get_running_loop()
    async with running_chat(tmp_path, flowing_clock, config=per_network_channels) as chat:
        for network, (slack, telegram) in NETWORKS.items():
            chat.slack.add_channel(f"care-{network}", channel_id=slack)
            chat.telegram.add_chat(telegram, title=f"Care: {network}")
        chat.slack.set_chaos(CHAOS, seed=7, kinds=SLACK_FAULTS, timeout_delay=0.5)
        chat.telegram.set_chaos(CHAOS, seed=7, kinds=TELEGRAM_FAULTS, timeout_delay=0.5)
        started = loop.time()

        results = await chat.ingest(*(
            mention(f"{network}-{i}", f"Kcell, {network} question {i}",
                    published=minutes_ago(flowing_clock, 2), platform=network,
                    author={"id": f"{network}-{i}", "name": f"Customer {i}"})
            for network in NETWORKS for i in range(PER_NETWORK)
        ))
        ids = [r["case_id"] for r in results]
        assert len(set(ids)) == len(NETWORKS) * PER_NETWORK
        by_network = {network: ids[n * PER_NETWORK:(n + 1) * PER_NETWORK]
                      for n, network in enumerate(NETWORKS)}
        places = _places(by_network)
        expected = dict.fromkeys(ids, "Unclaimed")

        def wanted() -> dict[Place, str]:
            return {place: expected[place[2]] for place in places}

        async def claim(case_id: int) -> None:
            await cases.claim(cases.Claim(case_id, "aigerim"), **_service(chat))
            expected[case_id] = "Claimed by Aigerim"

        async def answer(case_id: int) -> None:
            await cases.mark_answered(cases.MarkAnswered(case_id, "aigerim"), **_service(chat))
            expected[case_id] = "Answered by Aigerim"

        # Changed before its cards are out: the change rides on the post.
        for network_ids in by_network.values():
            await claim(network_ids[-1])
        chat.deps.wake()
        # Changed after: each change is an edit (or two coalesced into one).
        changed_after = [case_id for network_ids in by_network.values()
                         for case_id in network_ids[:2]]
        await _posted_everywhere(chat, changed_after)
        for network_ids in by_network.values():
            await claim(network_ids[0])
            await claim(network_ids[1])
            await answer(network_ids[1])
            chat.deps.wake()

        async def settled() -> bool:
            async with chat.deps.uow() as uow:
                cards = [card for case_id in ids for card in await uow.cards.for_case(case_id)]
            return len(cards) == len(places) and all(
                card.message_id is not None and card.synced_seq == card.change_seq
                for card in cards) and _shown(chat) == wanted()

        while not await settled():
            if loop.time() - started > SETTLE_WITHIN:
                break
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)  # nothing more arrives
        shown = _shown(chat)
        cards = _cards(chat)

    faults = Counter(call.fault for fake in (chat.slack, chat.telegram)
                     for call in fake.calls if call.fault)
    calls = len([c for fake in (chat.slack, chat.telegram) for c in fake.calls])
    # The faults were played: about 30 % of the calls, of every kind.
    assert faults["injected 429"] and faults["injected 500"] + faults["injected 502"] \
        + faults["injected 503"] and faults["timeout"] and faults["lost_response"], faults
    assert sum(faults.values()) >= 0.15 * calls, (faults, calls)
    # Every card arrived, none twice...
    assert sorted(cards) == sorted(places), set(cards) ^ set(places)
    assert all(len(messages) == 1 for messages in cards.values()), \
        {place: len(messages) for place, messages in cards.items() if len(messages) != 1}
    # ...and each shows its case's last state: no edit was lost.
    assert shown == wanted(), {place: (shown.get(place), state)
                               for place, state in wanted().items() if shown.get(place) != state}
    assert all(cards[place][0].edits for place in places if place[2] in changed_after)


def _service(chat: Chat) -> dict[str, Any]:
    return {"uow": chat.deps.uow(), "clock": chat.clock, "team": chat.deps.team}


def _places(by_network: dict[str, list[int]]) -> list[Place]:
    """Return where each case's card belongs: its network's Slack channel and group."""
    return [(messenger, str(channel), case_id)
            for network, case_ids in by_network.items() for case_id in case_ids
            for messenger, channel in zip(("slack", "telegram"), NETWORKS[network],
                                          strict=True)]


def _cards(chat: Chat) -> dict[Place, list[Any]]:
    """Return the card messages in every channel, by place."""
    found: dict[Place, list[Any]] = {}
    for slack, telegram in NETWORKS.values():
        for case_id, messages in slack_cards(chat, slack).items():
            found[("slack", slack, case_id)] = messages
        for case_id, messages in telegram_cards(chat, telegram).items():
            found[("telegram", str(telegram), case_id)] = messages
    return found


def _state_shown(message: Any) -> str:
    """Return the state a card shows (Slack: the end of its notification text, which
    is edited with its blocks; Telegram: its state line)."""
    if hasattr(message, "blocks"):
        state = message.text.rsplit(" — ", 1)[-1]
        assert f"*{state}*" in str(message.blocks), (state, message.blocks)
        return str(state)
    return state_line(message.text or "")


def _shown(chat: Chat) -> dict[Place, str]:
    """Return the state each card shows (the first card, if a case had several)."""
    return {place: _state_shown(messages[0]) for place, messages in _cards(chat).items()}


async def _posted_everywhere(chat: Chat, case_ids: list[int]) -> None:
    """Wait until these cases' cards are in every channel (and recorded)."""
    deadline = asyncio.get_running_loop().time() + SETTLE_WITHIN
    while True:
        async with chat.deps.uow() as uow:
            cards = [card for case_id in case_ids for card in await uow.cards.for_case(case_id)]
        if cards and all(card.message_id is not None for card in cards):
            return
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"the cards of {case_ids} not all posted within "
                                 f"{SETTLE_WITHIN} s")
        await asyncio.sleep(0.1)
