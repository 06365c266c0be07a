"""Languages of the people on shift: the queue shows each agent what they can answer,
and the shift leads hear, once an hour, of cases in a language nobody on shift speaks."""

from __future__ import annotations

from socialcare.adapters.telemetry import Telemetry
from socialcare.bot.model import Tier
from socialcare.bot.pipeline import Pipeline
from socialcare.bot.team import Person, Role, Source
from socialcare.bot.understanding import staffing
from socialcare.deps import Deps
from socialcare.handlers.commands import run_command
from socialcare.settings import Settings, load_catalog
from tests.conftest import FakeClock, Storage, make_team
from tests.mentions import mention

# T0 is 15:00 in Almaty. Aigerim (Russian, Kazakh) works days; Daniyar (English) nights.
TEAM = make_team(
    sources=(Source(name="webhook", kind="webhook", platform="instagram", tier=Tier.MAIN),),
    people=(
        Person(id="aigerim", name="Aigerim", slack="U0AIGERIM", languages=("ru", "kk"),
               hours="08:00-20:00"),
        Person(id="daniyar", name="Daniyar", telegram=102, languages=("en",),
               hours="20:00-08:00"),
        Person(id="saule", name="Saule", role=Role.LEAD, slack="U0SAULE", telegram=103,
               languages=("ru",)),
        Person(id="nurlan", name="Nurlan", role=Role.DIRECTOR, slack="U0NURLAN"),
    ),
)


async def _ingest(storage: Storage, clock: FakeClock) -> list[int]:
    results = await Pipeline(TEAM, clock=clock).ingest([
        mention(1, "Kcell, why is there no 4G again? Nobody answers me"),
        mention(2, "Кселлдің интернеті нашар, не болып жатыр?"),
        mention(3, "Kcell, my roaming does not work in Dubai at all"),
    ], uow=storage.uow())
    return [r.case_id for r in results if r.case_id]


async def test_leads_hear_once_an_hour_of_cases_in_a_language_nobody_on_shift_answers(
    storage: Storage, clock: FakeClock
) -> None:
    english_1, _, english_3 = await _ingest(storage, clock)

    first = await staffing.tell_leads_of_gaps(uow=storage.uow(), clock=clock, team=TEAM)
    again = await staffing.tell_leads_of_gaps(uow=storage.uow(), clock=clock, team=TEAM)
    clock.advance(hours=1)
    next_hour = await staffing.tell_leads_of_gaps(uow=storage.uow(), clock=clock, team=TEAM)
    clock.advance(hours=5)  # 21:00: Daniyar (English) is on shift, Aigerim (Kazakh) is not
    night = await staffing.tell_leads_of_gaps(uow=storage.uow(), clock=clock, team=TEAM)
    async with storage.uow() as uow:
        notices = await uow.notices.pending(messengers=["slack", "telegram"], limit=10)

    assert (first, again, next_hour, night) == (["en"], [], ["en"], ["kk"])
    assert {(n.messenger, n.recipient) for n in notices} == {("slack", "U0SAULE"),
                                                             ("telegram", "103")}
    assert {n.key for n in notices} == {"notice.language_gap"}
    assert notices[0].params == {"language": "en", "count": 2,
                                 "cases": f"#{english_1}, #{english_3}"}
    assert notices[-1].params["language"] == "kk"


async def test_a_team_that_lists_no_languages_has_no_gaps(
    storage: Storage, clock: FakeClock
) -> None:
    team = make_team()
    await Pipeline(team, clock=clock).ingest([mention(1, "Kcell, where is my data plan?")],
                                             uow=storage.uow())

    assert await staffing.tell_leads_of_gaps(uow=storage.uow(), clock=clock, team=team) == []


async def test_the_queue_shows_each_agent_the_cases_in_their_languages(
    storage: Storage, clock: FakeClock
) -> None:
    _, kazakh, _ = await _ingest(storage, clock)
    deps = Deps(settings=Settings(database_url=storage.url), team=TEAM,
                catalog=load_catalog("en"), clock=clock, engine=storage.engine,
                redis=storage.redis, pipeline=Pipeline(TEAM, clock=clock),
                telemetry=Telemetry())
    aigerim = await run_command("queue", "", TEAM.person("aigerim"), deps)
    daniyar = await run_command("queue", "", TEAM.person("daniyar"), deps)

    assert "Open cases for you (1)" in aigerim.text
    assert f"#{kazakh} " in aigerim.text and "Kazakh" in aigerim.text
    assert "+2 more in languages you do not answer in" in aigerim.text
    assert "Open cases for you (2)" in daniyar.text and "English" in daniyar.text
    assert "+1 more in languages you do not answer in" in daniyar.text


async def test_a_mention_from_a_source_of_one_brand_gets_its_language_without_naming_it(
    storage: Storage, clock: FakeClock
) -> None:
    reviews = Source(name="reviews", kind="webhook", platform="google", tier=Tier.EXTRA,
                     brand="Kcell")
    team = make_team(sources=(*TEAM.sources, reviews))
    [result] = await Pipeline(team, clock=clock).ingest(
        [mention(1, "Кеңседе кезек өте ұзақ, қызмет нашар", source="reviews")],
        uow=storage.uow())
    async with storage.uow() as uow:
        case = await uow.cases.get(result.case_id or 0)

    assert (case.brand, case.language) == ("Kcell", "kk")
