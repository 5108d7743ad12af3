"""CachingValidator: TTL, and no stale "valid" kept after a revocation announcement."""

from __future__ import annotations

import asyncio

import pytest

from stackling.common.context import RequestContext
from stackling.web.auth import CachingValidator


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Identity:
    """Answers "valid" and counts the questions; ``gate`` holds an answer in flight."""

    def __init__(self) -> None:
        self.asked = 0
        self.gate: asyncio.Event | None = None

    async def validate_context(self, token: str, request_id: str) -> RequestContext:
        self.asked += 1
        if self.gate is not None:
            await self.gate.wait()
        return RequestContext(user_id="u", project_id="p", request_id=request_id)


@pytest.fixture
def clock() -> Clock:
    return Clock()


async def test_answers_are_kept_for_the_ttl(clock: Clock) -> None:
    identity = Identity()
    cache = CachingValidator(identity, ttl=300, size=10, clock=clock)
    assert (await cache.validate_context("t", "r1")).request_id == "r1"
    clock.now += 299
    assert (await cache.validate_context("t", "r2")).request_id == "r2"
    assert identity.asked == 1
    clock.now += 2
    await cache.validate_context("t", "r3")
    assert identity.asked == 2


async def test_an_answer_just_after_a_revocation_is_asked_again_when_it_settles(
        clock: Clock) -> None:
    identity = Identity()
    cache = CachingValidator(identity, ttl=300, size=10, settle=3.0, clock=clock)
    await cache.validate_context("t", "r")
    cache.forget_all()
    clock.now += 1  # an identity process that has not heard yet still says valid
    await cache.validate_context("t", "r")
    clock.now += 1
    await cache.validate_context("t", "r")
    assert identity.asked == 2  # kept within the window...
    clock.now += 1.5
    await cache.validate_context("t", "r")
    assert identity.asked == 3  # ...but not past it
    clock.now += 100
    await cache.validate_context("t", "r")
    assert identity.asked == 3  # after the window, the full TTL again


async def test_an_answer_in_flight_during_a_revocation_is_not_kept_for_the_ttl(
        clock: Clock) -> None:
    identity = Identity()
    identity.gate = asyncio.Event()
    cache = CachingValidator(identity, ttl=300, size=10, settle=3.0, clock=clock)
    asked = asyncio.create_task(cache.validate_context("t", "r"))
    await asyncio.sleep(0)
    cache.forget_all()  # the revocation lands while identity is answering
    identity.gate.set()
    await asked
    identity.gate = None
    clock.now += 3.5
    await cache.validate_context("t", "r")
    assert identity.asked == 2
