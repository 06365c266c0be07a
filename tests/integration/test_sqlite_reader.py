"""`socialcare cases` reads an embedded database with the standard library's sqlite3:
it must give back exactly what the repositories give, and leave every database it
cannot vouch for (new, behind, newer, not SQLite) to the engine's path.

SQLite only by nature: each test makes its own file, whatever back end the run is on.
"""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

from socialcare.bot.model import Author, Case, Mention, Priority, State, Tier
from socialcare.storage.engine import create_engine, upgrade
from socialcare.storage.repositories import SqlCaseRepository, SqlMentionRepository
from socialcare.storage.revisions import head_revision, known_revisions
from socialcare.storage.sqlite_reader import SqliteReader, sqlite_file
from tests.conftest import T0


def _case(n: int, *, state: State = State.NEW, priority: Priority = Priority.NORMAL,
          due_minutes: int | None = 15, **fields: object) -> Case:
    published = T0 + timedelta(seconds=n)
    case = Case(brand="Kcell", source="webhook", platform="instagram", tier=Tier.MAIN,
                priority=priority, thread_key=f"t{n}", published_at=published,
                collected_at=published + timedelta(seconds=3, microseconds=n), state=state)
    case.response_due_at = T0 + timedelta(minutes=due_minutes) if due_minutes is not None \
        else None
    for name, value in fields.items():
        setattr(case, name, value)
    return case


def _mention(case: Case, n: int, **fields: object) -> Mention:
    values: dict[str, object] = {
        "source": case.source, "external_id": f"m{n}", "platform": case.platform,
        "text": f"Kcell, where is my refund? ({n})", "published_at": case.published_at,
        "collected_at": case.collected_at, "thread_key": case.thread_key, "case_id": case.id}
    return Mention(**(values | fields))  # type: ignore[arg-type]


async def _filled(path: Path) -> str:
    """Make a migrated SQLite file with open and closed cases of every kind; return its URL."""
    url = f"sqlite+aiosqlite:///{path}"
    engine = create_engine(url)
    try:
        await upgrade(engine)
        cases = [
            _case(1),
            _case(2, priority=Priority.URGENT),  # the same deadline as 1: listed before it
            _case(3, priority=Priority.HIGH),
            _case(4, due_minutes=None, state=State.ANSWERED, claimed_by="aigerim",
                  claimed_at=T0 + timedelta(minutes=2), first_response_at=T0 + timedelta(
                      minutes=4)),
            _case(5, state=State.RESOLVED, resolved_at=T0 + timedelta(hours=1)),
            _case(6, state=State.DISMISSED),
            _case(7, state=State.REOPENED, due_minutes=5, response_cycle=2,
                  response_alerts=1, resolve_due_at=T0 + timedelta(hours=2),
                  next_alert_at=T0 + timedelta(minutes=3), language="ru",
                  topics=("billing", "roaming"), places=("almaty",)),
            _case(8, state=State.CLAIMED, claimed_by="bolat", claimed_at=T0,
                  handoff_team="billing", handed_off_by="bolat",
                  handed_off_at=T0 + timedelta(minutes=1), tier=Tier.EXTRA, platform="forum"),
            _case(9, due_minutes=None),
        ]
        async with engine.begin() as conn:
            await SqlCaseRepository(conn).add(cases)
            mentions = [
                _mention(cases[0], 1, author=Author(id="42", name="Aigerim", handle="@aigerim",
                                                    url="https://example.org/aigerim"),
                         url="https://example.org/p/1"),
                _mention(cases[0], 2, text="a follow-up", parent_id="m1"),
                _mention(cases[1], 3, text="Kcell, я подам в суд <!channel>"),
                _mention(cases[3], 4, from_brand=True),
                _mention(cases[6], 5), _mention(cases[7], 6), _mention(cases[4], 7),
            ]  # case 9 has no mention at all
            await SqlMentionRepository(conn).add(mentions)
            # Another save moves a case's version on.
            cases[2].claimed_by = "aigerim"
            await SqlCaseRepository(conn).save(cases[2])
    finally:
        await engine.dispose()
    return url


async def test_the_reader_gives_what_the_repositories_give(tmp_path: Path) -> None:
    url = await _filled(tmp_path / "socialcare.db")
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            cases, mentions = SqlCaseRepository(conn), SqlMentionRepository(conn)
            expected = {limit: await cases.list_open(limit=limit) for limit in (1, 3, 200)}
            counted = await cases.count_open()
            firsts = await mentions.first_of(range(1, 10))
    finally:
        await engine.dispose()
    reader = SqliteReader.at_latest(url)
    assert reader is not None

    with reader:
        assert {limit: reader.list_open(limit=limit) for limit in (1, 3, 200)} == expected
        assert reader.count_open() == counted
        assert reader.first_of(range(1, 10)) == firsts

    assert [c.id for c in expected[200]] == [7, 2, 3, 1, 8, 4, 9]
    assert counted == {Tier.MAIN: 6, Tier.EXTRA: 1}
    assert sorted(firsts) == [1, 2, 4, 5, 7, 8] and firsts[1].external_id == "m1"


async def test_a_database_it_cannot_vouch_for_is_left_to_the_engine(tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    url = await _filled(tmp_path / "behind.db")
    with sqlite3.connect(tmp_path / "behind.db") as db:
        db.execute("UPDATE alembic_version SET version_num = '0001'")
    (tmp_path / "garbage.db").write_bytes(b"not a database at all" * 100)
    sqlite3.connect(tmp_path / "empty.db").close()
    await _filled(tmp_path / "newer.db")
    with sqlite3.connect(tmp_path / "newer.db") as db:
        db.execute("UPDATE alembic_version SET version_num = '0999'")

    for refused in (f"sqlite:///{missing}", url, f"sqlite:///{tmp_path / 'garbage.db'}",
                    f"sqlite:///{tmp_path / 'empty.db'}", f"sqlite:///{tmp_path / 'newer.db'}",
                    "sqlite://", "sqlite:///:memory:",
                    f"sqlite:///{tmp_path / 'newer.db'}?mode=ro",
                    "postgresql+asyncpg://postgres@127.0.0.1:5432/socialcare"):
        assert SqliteReader.at_latest(refused) is None, refused

    assert not missing.exists()  # looked for, not made


async def test_every_form_of_an_embedded_url_names_the_same_file(tmp_path: Path) -> None:
    path = tmp_path / "with space" / "socialcare.db"
    path.parent.mkdir()
    await _filled(path)

    for url in (f"sqlite:///{path}", f"sqlite+aiosqlite:///{path}",
                f"sqlite:///{str(path).replace(' ', '%20')}"):
        assert sqlite_file(url) == path
        reader = SqliteReader.at_latest(url)
        assert reader is not None, url
        with reader:
            assert len(reader.list_open(limit=200)) == 7
    assert sqlite_file("sqlite:///./data/socialcare.db") == Path("data/socialcare.db")


def test_the_latest_revision_is_the_end_of_the_migration_files_chain() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from socialcare.storage.revisions import MIGRATIONS

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    scripts = ScriptDirectory.from_config(config)

    assert head_revision() == scripts.get_current_head()
    assert known_revisions() == {script.revision for script in scripts.walk_revisions()}
