"""Signing in to the web console: passwords, one-time links and sessions.

People of the roster sign in with a link that `/console` sends them privately in
Slack or Telegram, or that `socialcare console link ID` prints on the server (valid for
15 minutes, once), or with a password an admin set
(`socialcare console password ID`). A session lasts while it is used: 12 hours
without a request end it, and none outlives a week. The browser holds a random token;
the database holds its SHA-256 only, and passwords as salted scrypt hashes.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from datetime import timedelta

from socialcare.bot.team import Person, Team
from socialcare.deps import Deps
from socialcare.storage.console import ConsoleSession
from socialcare.storage.database import SqlUnitOfWork

LINK_LIFETIME = timedelta(minutes=15)
IDLE_LIMIT = timedelta(hours=12)
SESSION_LIFETIME = timedelta(days=7)
# A session's last use is written at most this often (not on every request).
TOUCH_EVERY = timedelta(minutes=1)
# Forget ended links and sessions this long after they stopped counting.
KEEP_EXPIRED = timedelta(days=1)
MIN_PASSWORD = 10
# Password sign-in is limited per client address, so that nobody can lock anyone else
# out. Within the window: wrong passwords for one person from one address, after which
# that address waits (the person, elsewhere, does not) ...
MAX_FAILURES = 5
# ... wrong passwords from one address for anyone, known or not ...
MAX_CLIENT_FAILURES = 20
# ... and wrong passwords for one person from every address, past which each further
# check of that person's password is slowed down — never refused.
SLOW_DOWN_AFTER = 10
SLOW_DOWN_SECONDS = 2.0
FAILURE_WINDOW_SECONDS = 15 * 60
# scrypt's cost: 16 MiB and ~50 ms per try (OWASP's minimum is N=2^17 with r=8 for
# interactive logins on dedicated hardware; this keeps a small server responsive).
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
_KEY_BYTES = 32
# Compared with when a person has no password, so that the answer takes as long.
_DUMMY_HASH = ("scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA=="
               "$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")


class BadPassword(ValueError):
    """A password an admin tried to set is not acceptable; the message says why."""


class TooManyAttempts(Exception):
    """Too many wrong passwords from this address lately: wait, or use a link."""


@dataclass(frozen=True)
class SignedIn:
    """A new session: the token for the browser's cookie, and whose it is."""

    token: str
    session: ConsoleSession
    person: Person


@dataclass(frozen=True)
class Visitor:
    """A signed-in person on a request, with the session's CSRF token."""

    person: Person
    session: ConsoleSession

    @property
    def csrf(self) -> str:
        """Return the token every form of this session must carry."""
        return self.session.csrf


def token_hash(token: str) -> str:
    """Return how a token is stored: its SHA-256, hex."""
    return hashlib.sha256(token.encode()).hexdigest()


def hash_password(password: str) -> str:
    """Return a salted scrypt hash of a password, with its parameters."""
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=_KEY_BYTES, **_SCRYPT)
    return "$".join(["scrypt", str(_SCRYPT["n"]), str(_SCRYPT["r"]), str(_SCRYPT["p"]),
                     base64.b64encode(salt).decode(), base64.b64encode(digest).decode()])


def password_matches(password: str, stored: str) -> bool:
    """Tell whether a password is the one behind a stored hash."""
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        expected = base64.b64decode(digest, validate=True)
        if kind != "scrypt" or len(expected) != _KEY_BYTES:
            return False
        found = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt, validate=True),
                               n=int(n), r=int(r), p=int(p), dklen=_KEY_BYTES)
    except ValueError:
        return False
    return hmac.compare_digest(found, expected)


def find_person(team: Team, typed: str) -> Person | None:
    """Return the roster entry someone typed: their id or their name, any case."""
    folded = typed.strip().removeprefix("@").casefold()
    return next((p for p in team.people
                 if folded and folded in (p.id.casefold(), p.name.casefold())), None)


async def set_password(deps: Deps, person_id: str, password: str) -> Person:
    """Store a roster person's console password (an admin's command); return the person."""
    person = find_person(deps.team, person_id)
    if person is None:
        raise BadPassword(f"{person_id!r} is not in the roster of {deps.settings.config_file}")
    if len(password) < MIN_PASSWORD:
        raise BadPassword(f"the password is too short: at least {MIN_PASSWORD} characters")
    hashed = await asyncio.to_thread(hash_password, password)
    async with deps.uow() as uow:
        await uow.console.set_password(person.id, hashed, at=deps.clock.now())
        await uow.commit()
    return person


def console_url(deps: Deps) -> str | None:
    """Return the console's public base URL without a trailing slash, if set."""
    url = deps.settings.console_url
    return None if url is None else str(url).rstrip("/")


def secure_cookies(deps: Deps) -> bool:
    """Tell whether the console is served over https, so cookies must be Secure."""
    url = console_url(deps)
    return url is not None and url.startswith("https://")


def local_address(host: str, port: int) -> str:
    """Return the address a browser on this machine reaches the server at."""
    if host in ("", "0.0.0.0", "::"):  # every address: this machine's own will do
        host = "127.0.0.1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


async def issue_link(deps: Deps, person: Person, *, base: str | None = None) -> str | None:
    """Make a one-time sign-in link for a person, to the console at `base` (default
    CONSOLE_URL); None when neither is set."""
    base = base or console_url(deps)
    if base is None:
        return None
    token = secrets.token_urlsafe(32)
    now = deps.clock.now()
    async with deps.uow() as uow:
        await uow.console.add_link(token_hash(token), person.id, at=now,
                                   expires_at=now + LINK_LIFETIME)
        await uow.commit()
    return f"{base}/signin/link/{token}"


async def link_owner(deps: Deps, token: str) -> Person | None:
    """Return whose valid link this is, without using it up."""
    async with deps.uow() as uow:
        person_id = await uow.console.link_owner(token_hash(token), now=deps.clock.now())
    return None if person_id is None else deps.team.person(person_id)


async def sign_in_with_link(deps: Deps, token: str) -> SignedIn | None:
    """Use a one-time link; None if it is unknown, used, expired, or its person left."""
    now = deps.clock.now()
    async with deps.uow() as uow:
        person_id = await uow.console.use_link(token_hash(token), now=now)
        person = None if person_id is None else deps.team.person(person_id)
        if person is None:
            return None
        signed = await _open_session(uow, person, deps)
        await uow.commit()
    return signed


# KEYS: the counters of one attempt; ARGV: the window. Count the attempt in each
# (a new counter starts the window) and return the counts.
_COUNT = """
local counts = {}
for i, key in ipairs(KEYS) do
    counts[i] = redis.call('INCR', key)
    if counts[i] == 1 then
        redis.call('EXPIRE', key, ARGV[1])
    end
end
return counts
"""


def _failure_keys(name: str, client: str) -> list[str]:
    return [f"console:signin-failures:{name}:{client}",  # this person from this address
            f"console:signin-failures:client:{client}",  # anyone from this address
            f"console:signin-failures:person:{name}"]  # this person from anywhere


async def sign_in_with_password(deps: Deps, typed: str, password: str, *,
                                client: str) -> SignedIn | None:
    """Check a password typed at the client address `client`; None if the person or the
    password is wrong.

    Raises TooManyAttempts after MAX_FAILURES wrong ones for a person from this address,
    or MAX_CLIENT_FAILURES for anyone, in the window; past SLOW_DOWN_AFTER wrong ones
    for a person from anywhere, each check waits SLOW_DOWN_SECONDS first."""
    person = find_person(deps.team, typed)
    keys = _failure_keys(person.id if person else typed.strip().casefold()[:64], client)
    # Counted before the check, so that attempts sent at once cannot all pass the limit.
    pair, from_client, for_person = (int(n) for n in await deps.redis.eval(
        _COUNT, len(keys), *keys, FAILURE_WINDOW_SECONDS))
    if pair > MAX_FAILURES or from_client > MAX_CLIENT_FAILURES:
        raise TooManyAttempts()
    if for_person > SLOW_DOWN_AFTER:
        await asyncio.sleep(SLOW_DOWN_SECONDS)
    stored = None
    if person is not None:
        async with deps.uow() as uow:
            stored = await uow.console.password_hash(person.id)
    # Hash anyway when there is nothing to compare with: the answer takes as long.
    async with deps.password_checks:
        matches = await asyncio.to_thread(password_matches, password, stored or _DUMMY_HASH)
    if person is None or stored is None or not matches:
        return None
    # Not a wrong password after all: it counts nowhere.
    await deps.redis.delete(keys[0])
    for key in keys[1:]:
        await deps.redis.decr(key)
    async with deps.uow() as uow:
        signed = await _open_session(uow, person, deps)
        await uow.commit()
    return signed


async def _open_session(uow: SqlUnitOfWork, person: Person, deps: Deps) -> SignedIn:
    now = deps.clock.now()
    token = secrets.token_urlsafe(32)
    session = ConsoleSession(token_hash=token_hash(token), person_id=person.id,
                             csrf=secrets.token_urlsafe(32), created_at=now, seen_at=now,
                             expires_at=now + SESSION_LIFETIME)
    await uow.console.purge(before=now - KEEP_EXPIRED)
    await uow.console.add_session(session)
    return SignedIn(token, session, person)


async def visitor(deps: Deps, token: str | None) -> Visitor | None:
    """Return who holds a session token, if it is still good; note its use."""
    if not token:
        return None
    now = deps.clock.now()
    async with deps.uow() as uow:
        session = await uow.console.session(token_hash(token))
        if session is None or session.ended_at is not None or session.expires_at <= now \
                or session.seen_at + IDLE_LIMIT <= now:
            return None
        person = deps.team.person(session.person_id)
        if person is None:  # taken off the roster since
            return None
        if now - session.seen_at >= TOUCH_EVERY:
            await uow.console.touch_session(session.token_hash, at=now)
            await uow.commit()
    return Visitor(person, session)


async def sign_out(deps: Deps, session: ConsoleSession) -> None:
    """End a session."""
    async with deps.uow() as uow:
        await uow.console.end_session(session.token_hash, at=deps.clock.now())
        await uow.commit()


async def sign_out_everywhere(deps: Deps, person_id: str) -> int:
    """End every session of a person (a lost phone, a shared screen); return how many."""
    async with deps.uow() as uow:
        ended = await uow.console.end_sessions_of(person_id, at=deps.clock.now())
        await uow.commit()
    return ended
