"""What `socialcare demo` runs beside the app: its settings, a fresh database, the
sample arriving, the simulated shift, and what it tells the person at the terminal.

The demo reads no environment and no `.env`: it has its own SQLite file, the
in-process Redis, no Slack or Telegram, only webhook sources (nothing is polled), and
replies kept locally — it touches no network but its own address on 127.0.0.1.
"""

from __future__ import annotations

import logging
import random
import secrets
from pathlib import Path
from typing import TextIO

from aiohttp import web
from pydantic import AnyHttpUrl

from socialcare.bot.model import Tier
from socialcare.bot.pipeline import IngestResult, Outcome
from socialcare.bot.ports import Clock, Publisher
from socialcare.bot.team import Person, Role
from socialcare.console import access
from socialcare.demo import sample
from socialcare.demo.agents import Shift
from socialcare.demo.feed import feed
from socialcare.demo.publisher import KeepingPublisher
from socialcare.deps import Deps
from socialcare.handlers import background
from socialcare.settings import Settings, load_team

log = logging.getLogger(__name__)

CONFIG = Path(__file__).parent / "demo.toml"
DATA_DIR = Path("data")
DATABASE = "demo.db"
HOST = "127.0.0.1"
DEFAULT_PORT = 8080
_ROLE_NAMES = {Role.AGENT: "agents", Role.LEAD: "lead", Role.DIRECTOR: "directors",
               Role.SECOND_LINE: "second line", Role.ADMIN: "admin"}


def demo_settings(*, port: int = DEFAULT_PORT, data_dir: Path = DATA_DIR) -> Settings:
    """Return the demo's settings, built here and not read from the environment."""
    database = (data_dir / DATABASE).resolve()
    return Settings.model_construct(
        database_url=f"sqlite+aiosqlite:///{database}",
        redis_url=None,
        config_file=CONFIG,
        http_host=HOST,
        http_port=port,
        console_url=AnyHttpUrl(f"http://{HOST}:{port}"),
    )


def database_file(settings: Settings) -> Path:
    """Return where the demo's SQLite database is."""
    return Path(settings.database_url.split(":///", 1)[1])


def reset(settings: Settings) -> None:
    """Remove the demo's database, so that every demo starts from nothing."""
    database = database_file(settings)
    for suffix in ("", "-wal", "-shm", "-journal"):
        database.with_name(database.name + suffix).unlink(missing_ok=True)


def publishers(settings: Settings, clock: Clock) -> dict[str, Publisher]:
    """Return a publisher for every demo source that keeps the replies locally."""
    keeper = KeepingPublisher(clock)
    return {source.name: keeper for source in load_team(settings.config_file).sources}


class Demo:
    """The sample arriving and the simulated shift, as loops of the running app."""

    def __init__(self, deps: Deps, *, speed: float, agents: bool, out: TextIO,
                 seed: int | None = None) -> None:
        self._deps = deps
        self._out = out
        self.speed = speed
        self._rng = random.Random(seed)
        self.arrivals = sample.load(sources={s.name for s in deps.team.sources})
        self.shift = Shift(deps, speed=speed, rng=self._rng) if agents else None

    def register(self, app: web.Application) -> None:
        """Run the sample's arrival and the shift while the app serves."""
        background.run_while_serving(app, "demo mentions", self._feed)
        if self.shift is not None:
            background.run_while_serving(app, "demo shift", self.shift.run)

    async def _feed(self) -> None:
        tally = await feed(self._deps, self.arrivals, speed=self.speed, rng=self._rng,
                           stored=self._stored)
        outcomes = ", ".join(f"{n} {label}" for label, n in sorted(tally.outcomes.items()))
        self._say(f"demo: the sample is all in: {tally.arrived} mentions ({outcomes}). "
                  + ("The simulated agents go on working; " if self.shift else "")
                  + "Ctrl-C stops the demo.")

    def _stored(self, arrival: sample.Arrival, result: IngestResult) -> None:
        if self.shift is not None and result.case_id is not None:
            self.shift.expect(result.case_id, arrival.care,
                              new=result.outcome is Outcome.CREATED)

    async def welcome(self) -> None:
        """Tell the person at the terminal where the console is and how to sign in."""
        base = access.console_url(self._deps)
        self._say(f"socialcare demo is running: open {base}/")
        for line in await sign_in_hint(self._deps):
            self._say(f"  {line}")
        self._say(f"  {self._story()}")
        self._say("  Nothing leaves this machine: no Slack or Telegram, replies are kept "
                  f"locally; the data is in {database_file(self._deps.settings)}, new at "
                  "every start.")
        self._say("  Ctrl-C stops the demo.")

    def _story(self) -> str:
        team = self._deps.team
        tiers = {source.name: source.tier for source in team.sources}
        main = sum(1 for a in self.arrivals if tiers[a.mention.source] is Tier.MAIN)
        seconds = round(self.arrivals[-1].at / self.speed) if self.arrivals else 0
        pace = f"{seconds // 60} min {seconds % 60} s" if seconds >= 60 else f"{seconds} s"
        story = (f"{len(self.arrivals)} sample mentions in Russian, Kazakh and English — "
                 f"{main} on the six social networks, {len(self.arrivals) - main} on forums "
                 f"and news portals — arrive over the next {pace}")
        if self.shift is None:
            return story + "; no simulated agents (--no-agents): the cases are yours."
        names = ", ".join(p.name for p in team.people if p.id in self.shift.agents)
        return (story + f"; simulated agents ({names}) claim, answer and resolve most of "
                "them, and leave some to breach their SLA.")

    def _say(self, line: str) -> None:
        print(line, file=self._out, flush=True)


async def sign_in_hint(deps: Deps, *, password: str | None = None) -> list[str]:
    """Make a one-time sign-in link for the shift lead and a password for the whole
    roster (a demo's own, new at every start); return the lines that say so.

    This is the one place the demo's sign-in is given: the link is the same one
    `/console` sends a person in Slack or Telegram."""
    password = password or secrets.token_urlsafe(12)
    lines: list[str] = []
    lead = next((p for p in deps.team.people if p.role is Role.LEAD), None)
    link = None if lead is None else await access.issue_link(deps, lead)
    if lead is not None and link is not None:
        minutes = int(access.LINK_LIFETIME.total_seconds() // 60)
        lines += [f"Sign in as {lead.name} (shift lead) with this one-time link, good for "
                  f"{minutes} minutes:", f"  {link}"]
    for person in deps.team.people:
        await access.set_password(deps, person.id, password)
    lines.append(f"Or sign in at {access.console_url(deps)}/signin as anyone of the team — "
                 f"{_roster(deps.team.people)} — with the password {password}")
    return lines


def _roster(people: tuple[Person, ...]) -> str:
    groups: dict[Role, list[str]] = {}
    for person in people:
        groups.setdefault(person.role, []).append(person.id)
    return "; ".join(f"{', '.join(ids)} ({_ROLE_NAMES.get(role, role.value)})"
                     for role, ids in groups.items())
