"""The console's command line: `socialcare console link ID`, `… password ID`, `… signout ID`."""

from __future__ import annotations

import asyncio
import getpass
import sys
from typing import TextIO

from socialcare.console import access
from socialcare.deps import Deps


def read_password(stream: TextIO) -> str | None:
    """Read a new password: asked twice on a terminal, else the first line of the stream.

    Returns None when the two typed on a terminal differ."""
    if stream.isatty():
        first = getpass.getpass("New console password: ")
        again = getpass.getpass("Again: ")
        return first if first == again else None
    return stream.readline().rstrip("\r\n")


async def set_password(deps: Deps, person_id: str, stream: TextIO, out: TextIO) -> int:
    """Set a person's console password from `stream`; return the exit code."""
    password = await asyncio.to_thread(read_password, stream)
    if password is None:
        print("socialcare console password: the two passwords differ; nothing was changed",
              file=sys.stderr)
        return 2
    try:
        person = await access.set_password(deps, person_id, password)
    except access.BadPassword as bad:
        print(f"socialcare console password: {bad}; nothing was changed", file=sys.stderr)
        return 2
    where = f"{access.console_url(deps)}/signin" if access.console_url(deps) else "/signin"
    print(f"console password set for {person.name} ({person.id}, {person.role.value}); "
          f"they sign in at {where}", file=out)
    return 0


async def print_link(deps: Deps, person_id: str, out: TextIO) -> int:
    """Print a one-time sign-in link for a roster person; return the exit code.

    For the machine's owner: it works before any messenger is set up. Without
    CONSOLE_URL the link points at the server's HTTP_HOST and HTTP_PORT."""
    person = access.find_person(deps.team, person_id)
    if person is None:
        known = ", ".join(p.id for p in deps.team.people) or "nobody"
        print(f"socialcare console link: {person_id!r} is not in the roster of "
              f"{deps.settings.config_file} (people: {known})", file=sys.stderr)
        return 2
    settings = deps.settings
    base = access.console_url(deps) or access.local_address(settings.http_host,
                                                           settings.http_port)
    link = await access.issue_link(deps, person, base=base)
    minutes = int(access.LINK_LIFETIME.total_seconds() // 60)
    print(f"One-time sign-in link to the web console for {person.name} ({person.id}, "
          f"{person.role.value}), good for {minutes} minutes and one use — do not share it:",
          file=out)
    print(f"  {link}", file=out)
    return 0


async def sign_out_everywhere(deps: Deps, person_id: str, out: TextIO) -> int:
    """End every console session of a roster person; return the exit code."""
    person = access.find_person(deps.team, person_id)
    if person is None:
        print(f"socialcare console signout: {person_id!r} is not in the roster of "
              f"{deps.settings.config_file}", file=sys.stderr)
        return 2
    ended = await access.sign_out_everywhere(deps, person.id)
    print(f"{ended} console session(s) of {person.name} ({person.id}) ended", file=out)
    return 0
