"""Which migrations exist, read from the migration files themselves: without Alembic
(a third of a second) or SQLAlchemy, so that a command can tell whether a database is
at the latest migration before it decides to load either."""

from __future__ import annotations

import re
from pathlib import Path

MIGRATIONS = Path(__file__).parent / "migrations"

_REVISION = re.compile(r'^(down_revision|revision)\s*(?::[^=]*)?=\s*"([^"]*)"\s*$', re.M)


class UnknownSchema(Exception):
    """The database is at a migration this version does not have (a newer one made it)."""

    def __init__(self, revision: str) -> None:
        super().__init__(f"the database is at migration {revision}, which this version of "
                         "socialcare does not have: a newer version migrated it. Run that "
                         "version, or point DATABASE_URL at another database")
        self.revision = revision


def head_revision() -> str | None:
    """Return the last migration's revision, if the files form one simple chain."""
    chain = _chain()
    if chain is None:
        return None  # a shape this reading does not know: let Alembic decide
    heads = set(chain) - set(chain.values())
    return heads.pop() if len(heads) == 1 else None


def known_revisions() -> set[str]:
    """Return the revisions of every migration file."""
    return set(_chain() or {})


def _chain() -> dict[str, str | None] | None:
    """Return each migration's revision and the one before it, read from the files."""
    chain: dict[str, str | None] = {}
    for path in (MIGRATIONS / "versions").glob("*.py"):
        found = dict(_REVISION.findall(path.read_text(encoding="utf-8")))
        if "revision" not in found:
            return None
        chain[found["revision"]] = found.get("down_revision")
    return chain
