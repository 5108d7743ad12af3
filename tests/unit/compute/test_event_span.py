"""EventSpan: a quick step is recorded whole at its end; a slow one shows its start."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from stackling.common.errors import ServiceUnavailable
from stackling.compute.agent.events import EventSpan
from stackling.compute.rpcapi import ConductorAPI


class Conductor(ConductorAPI):
    """Records the agent's action_event calls; ``delay`` holds each call in flight."""

    def __init__(self, delay: float = 0.0, fail: bool = False) -> None:
        self.host = "h1"
        self.calls: list[tuple[Any, ...]] = []
        self.delay = delay
        self.fail = fail

    async def action_event(self, instance_uuid: str, request_id: str, event: str, phase: str,
                           result: str | None = None, details: str | None = None,
                           started: datetime | None = None) -> None:
        await asyncio.sleep(self.delay)
        if self.fail:
            raise ServiceUnavailable("conductor away")
        self.calls.append((event, phase, result, details, started))


async def test_a_quick_step_is_one_whole_event_at_its_end() -> None:
    conductor = Conductor()
    span = EventSpan(conductor, "u1", "req-1", "compute_terminate_instance", show_after=0.5)
    events = await span.end("Success")
    assert conductor.calls == []  # no start was sent
    (e,) = events
    assert (e.phase, e.result, e.started, e.host) == ("done", "Success", span.started, "h1")
    await asyncio.sleep(0.6)
    assert conductor.calls == []  # and none comes later


async def test_a_slow_step_shows_its_start_then_finishes() -> None:
    conductor = Conductor()
    span = EventSpan(conductor, "u1", "req-1", "compute_terminate_instance", show_after=0.01)
    await asyncio.sleep(0.05)
    assert [c[:2] for c in conductor.calls] == [("compute_terminate_instance", "start")]
    (e,) = await span.end("Success")
    assert (e.phase, e.started) == ("finish", None)


async def test_an_end_while_the_start_is_in_flight_waits_for_it() -> None:
    conductor = Conductor(delay=0.1)
    span = EventSpan(conductor, "u1", "req-1", "e", show_after=0.01)
    await asyncio.sleep(0.03)  # the start is on its way
    (e,) = await span.end("Success")
    assert e.phase == "finish" and [c[1] for c in conductor.calls] == ["start"]


async def test_a_start_that_could_not_be_sent_still_ends_whole() -> None:
    conductor = Conductor(fail=True)
    span = EventSpan(conductor, "u1", "req-1", "e", show_after=0.01)
    await asyncio.sleep(0.05)
    (e,) = await span.end("Success")
    assert e.phase == "done" and e.started == span.started


async def test_a_failed_step_is_recorded_as_an_error() -> None:
    conductor = Conductor()
    span = EventSpan(conductor, "u1", "req-1", "e", show_after=0.5)
    await span.fail("disk on fire")
    assert conductor.calls == [("e", "done", "Error", "disk on fire", span.started)]
    await EventSpan(Conductor(fail=True), "u1", "req-1", "e", show_after=0.5).fail("x")


async def test_no_request_id_no_event() -> None:
    conductor = Conductor()
    span = EventSpan(conductor, "u1", "", "e", show_after=0.0)
    await asyncio.sleep(0.02)
    assert await span.end("Success") == [] and conductor.calls == []


async def test_an_abandoned_step_shows_no_start() -> None:
    conductor = Conductor()
    span = EventSpan(conductor, "u1", "req-1", "e", show_after=0.01)
    span.abandon()
    await asyncio.sleep(0.05)
    assert conductor.calls == []
