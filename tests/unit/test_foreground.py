"""Work no one waits on gives way to the requests in flight, but never for long."""

from __future__ import annotations

import asyncio

from socialcare.foreground import Foreground


async def test_with_no_request_in_flight_nothing_waits() -> None:
    foreground = Foreground()
    await asyncio.wait_for(foreground.give_way(), 0.05)
    assert not foreground.busy


async def test_work_resumes_when_the_last_request_in_flight_has_its_answer() -> None:
    foreground = Foreground(at_most=5.0)
    order: list[str] = []

    async def background() -> None:
        await foreground.give_way()
        order.append("background")

    with foreground.answering():
        with foreground.answering():
            waiting = asyncio.create_task(background())
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.05)  # one request is still in flight
        order.append("answered")
    await asyncio.wait_for(waiting, 1.0)

    assert order == ["answered", "background"]


async def test_a_request_that_comes_as_the_last_one_goes_is_answered_first() -> None:
    foreground = Foreground(at_most=5.0)
    order: list[str] = []

    async def background() -> None:
        await foreground.give_way()
        order.append("background")

    async def request() -> None:
        with foreground.answering():
            await asyncio.sleep(0.05)
            order.append("second request")

    first = foreground.answering()
    first.__enter__()
    waiting = asyncio.create_task(background())
    await asyncio.sleep(0.01)
    second = asyncio.create_task(request())  # arrived, its first step not run yet
    first.__exit__(None, None, None)
    await asyncio.wait_for(asyncio.gather(waiting, second), 1.0)

    assert order == ["second request", "background"]


async def test_a_stream_of_requests_holds_work_back_at_most_its_limit() -> None:
    foreground = Foreground(at_most=0.1)
    loop = asyncio.get_running_loop()
    with foreground.answering():
        began = loop.time()
        await foreground.give_way()
        waited = loop.time() - began

    assert 0.09 <= waited < 0.5


async def test_work_waits_a_lull_after_an_answer_for_the_next_request_of_a_stream() -> None:
    foreground = Foreground(at_most=5.0, lull=0.05)
    order: list[str] = []

    async def background() -> None:
        await foreground.give_way()
        order.append("background")

    async def request(name: str) -> None:
        with foreground.answering():
            await asyncio.sleep(0.02)
            order.append(name)

    await request("first click")
    waiting = asyncio.create_task(background())  # just after the answer: within the lull
    await asyncio.sleep(0.01)
    await request("next click")  # came 10 ms after the answer before it
    await asyncio.wait_for(waiting, 1.0)

    assert order == ["first click", "next click", "background"]


async def test_once_the_lull_has_passed_work_goes_at_once() -> None:
    foreground = Foreground(at_most=5.0, lull=0.05)
    loop = asyncio.get_running_loop()
    with foreground.answering():
        pass
    began = loop.time()
    await foreground.give_way()  # within the lull: waits out the rest of it
    waited = loop.time() - began
    began = loop.time()
    await foreground.give_way()
    assert 0.04 <= waited < 0.5
    assert loop.time() - began < 0.01
