"""Servers in processes of their own for the benchmarks (`benchmarks.serve_child`)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import asdict
from typing import Any

from benchmarks import running

READY_SECONDS = 120.0
# How long a child may take to stop and report; a profiled one writes its profile first.
STOP_SECONDS = 60.0
PROFILED_STOP_SECONDS = 600.0


@asynccontextmanager
async def serving(kind: str, *, port: int, endpoints: running.Endpoints,
                  database_url: str | None = None, redis_url: str | None = None,
                  profile_to: str | None = None,
                  report: dict[str, Any] | None = None) -> AsyncIterator[str]:
    """Run a server (`kind` socialcare or bare) in a child process; yield its base URL.

    On the way out the child stops and its figures (garbage collections, peak RSS)
    land in `report`."""
    args = {"kind": kind, "port": port, "endpoints": asdict(endpoints),
            "database_url": database_url, "redis_url": redis_url}
    env = dict(os.environ)
    if profile_to:
        env["SOCIALCARE_PROFILE"] = profile_to
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "benchmarks.serve_child", json.dumps(args), cwd=running.ROOT,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, env=env,
    )
    assert child.stdin is not None and child.stdout is not None
    try:
        line = await asyncio.wait_for(child.stdout.readline(), READY_SECONDS)
        if line.strip() != b"ready":
            raise RuntimeError(f"the {kind} server did not start: {line!r}")
        yield f"http://127.0.0.1:{port}"
    finally:
        child.stdin.close()
        try:
            out = await asyncio.wait_for(child.stdout.read(),
                                         PROFILED_STOP_SECONDS if profile_to else STOP_SECONDS)
            await child.wait()
        except TimeoutError:
            child.kill()
            await child.wait()
            out = b""
        lines = out.decode(errors="replace").strip().splitlines()
        if report is not None and lines:
            with suppress(ValueError):
                report.update(json.loads(lines[-1]))
