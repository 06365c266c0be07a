"""The demo's simulated shift: roster agents who claim, answer, resolve and dismiss the
sample's cases after a person's delays, through the same domain commands as the chat.

The shift acts only on cases it was told about (`expect`), each as its mention's
`care` says. It looks at the open cases every tick and takes one step on a case
once the case has stayed as it saw it for the step's delay, so a follow-up that
arrives meanwhile, or a person in the console who is quicker, changes its plans
as it would a person's: when someone else holds a case, the shift lets it go.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from socialcare.bot import cases
from socialcare.bot.errors import DomainError
from socialcare.bot.model import Case, State
from socialcare.bot.team import Role
from socialcare.demo.sample import Care, Fate
from socialcare.deps import Deps
from socialcare.handlers import background
from socialcare.handlers.chat import service

log = logging.getLogger(__name__)

# A person's delays in seconds, before --speed: from the case showing up to a
# claim, from a claim (or the customer writing again) to an answer, from the
# answer to resolving it, and to dismissing a case that needs no answer.
DELAYS = {"claim": (15.0, 75.0), "answer": (45.0, 150.0), "resolve": (40.0, 120.0),
          "dismiss": (20.0, 60.0)}
# What an agent notes when they answered without a reply text (by phone, in a DM).
ANSWERED_ELSEWHERE = "Answered the customer in direct messages."


class Step(StrEnum):
    """One thing an agent does to a case."""

    CLAIM = "claim"
    ANSWER = "answer"
    RESOLVE = "resolve"
    DISMISS = "dismiss"


@dataclass
class Plan:
    """What the shift means to do with one case, and where it stands."""

    care: Care
    agent: str
    replies: deque[str] = field(default_factory=deque)
    seen: tuple[int, Step] | None = None  # the case's version and the step planned on it
    due: float = 0.0  # loop time when that step is taken
    held: bool = False  # claimed once, to be held (a claim that expired stays free)
    done: bool = False  # someone else has it, or it went wrong: hands off

    def next_step(self, case: Case) -> Step | None:
        """Return the step this case calls for now, if any."""
        if self.done or self.care.do is Fate.LEAVE:
            return None
        if case.claimed_by not in (None, self.agent):
            self.done = True  # a person (or a lead) took it: theirs now
            return None
        if case.state in (State.NEW, State.REOPENED):
            if self.care.do is Fate.DISMISS:
                return Step.DISMISS
            return None if self.held else Step.CLAIM
        if case.state is State.CLAIMED:
            return None if self.care.do is Fate.HOLD else Step.ANSWER
        if case.state is State.ANSWERED and self.replies and self.care.do is not Fate.HOLD:
            return Step.ANSWER  # the customer wrote again before the first answer
        if case.state is State.ANSWERED and self.care.do is Fate.RESOLVE:
            return Step.RESOLVE
        return None


class Shift:
    """The simulated agents."""

    def __init__(self, deps: Deps, *, speed: float, rng: random.Random,
                 agents: Sequence[str] | None = None) -> None:
        self._deps = deps
        self._speed = speed
        self._rng = rng
        self.agents = list(agents) if agents is not None else [
            p.id for p in deps.team.people if p.role is Role.AGENT]
        self._plans: dict[int, Plan] = {}
        self._turn = 0
        self.steps_taken: dict[Step, int] = dict.fromkeys(Step, 0)

    @property
    def tick(self) -> float:
        """Return how often the shift looks at the queue, in seconds."""
        return min(1.0, max(0.05, 1.0 / self._speed))

    def expect(self, case_id: int, care: Care, *, new: bool) -> None:
        """Note a mention the pipeline stored: a new case to plan, or a follow-up's reply."""
        plan = self._plans.get(case_id)
        if new and plan is None:
            plan = self._plans[case_id] = Plan(care, care.by or self._next_agent())
        if plan is not None and care.reply:
            plan.replies.append(care.reply)

    def _next_agent(self) -> str:
        agent = self.agents[self._turn % len(self.agents)]
        self._turn += 1
        return agent

    async def run(self) -> None:
        """Work the queue until cancelled."""
        while True:
            background.stop_if_asked()
            try:
                await self.look()
            except Exception:
                background.stop_if_asked()
                log.exception("demo: the simulated shift stumbled; it carries on")
            await asyncio.sleep(self.tick)

    async def look(self) -> None:
        """Look at the open cases once: plan what changed, take the steps that are due."""
        if not self._plans:
            return
        async with self._deps.uow() as uow:
            open_cases = await uow.cases.list_open(limit=1000)
        now = asyncio.get_running_loop().time()
        for case in open_cases:
            plan = self._plans.get(case.id) if case.id is not None else None
            step = plan.next_step(case) if plan is not None else None
            if plan is None or step is None:
                continue
            if plan.seen != (case.version, step):
                plan.seen = (case.version, step)
                plan.due = now + self._delay(step, plan) / self._speed
            elif now >= plan.due:
                await self._take(step, case, plan)

    def _delay(self, step: Step, plan: Plan) -> float:
        if step is Step.CLAIM and plan.care.claim_after is not None and not plan.held:
            return plan.care.claim_after
        low, high = DELAYS[step.value]
        return self._rng.uniform(low, high)

    async def _take(self, step: Step, case: Case, plan: Plan) -> None:
        assert case.id is not None
        deps, agent = self._deps, plan.agent
        try:
            if step is Step.CLAIM:
                await cases.claim(cases.Claim(case.id, agent), **service(deps))
                plan.held = plan.care.do is Fate.HOLD
            elif step is Step.ANSWER and plan.replies:
                await cases.reply(cases.Reply(case.id, agent, plan.replies[0]),
                                  publishers=deps.publishers, **service(deps))
                plan.replies.popleft()
            elif step is Step.ANSWER:
                note = plan.care.note or ANSWERED_ELSEWHERE
                await cases.mark_answered(cases.MarkAnswered(case.id, agent, text=note),
                                          **service(deps))
            elif step is Step.RESOLVE:
                await cases.resolve(cases.Resolve(case.id, agent), **service(deps))
            else:
                reason = plan.care.reason or "not for us"
                await cases.dismiss(cases.Dismiss(case.id, agent, reason=reason),
                                    **service(deps))
        except DomainError as refused:
            # Someone was quicker (a person in the console), or the case moved on.
            log.info("demo: %s could not %s case #%d: %s", agent, step.value, case.id, refused)
            plan.done = True
            return
        self.steps_taken[step] += 1
        log.info("demo: %s did %s on case #%d", agent, step.value, case.id)
        deps.wake()
