"""The bus contract on the in-process transport, plus memory-only details."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from stackling.bus import (
    MemoryBroker,
    MemoryTransport,
    Message,
    MessageRegistry,
    RemoteError,
    Transport,
)

from .contract import BusContract, MakeBus, Ping, collector, registry, wait_until


@pytest.fixture
async def make_bus() -> AsyncIterator[MakeBus]:
    broker = MemoryBroker()
    made: list[Transport] = []

    async def make(reg: MessageRegistry | None = None, **options: Any) -> Transport:
        options.setdefault("call_timeout", 5)
        transport = MemoryTransport(broker, registry=reg or registry(), **options)
        await transport.start()
        made.append(transport)
        return transport

    yield make
    for transport in made:
        await transport.close()


class TestMemoryContract(BusContract):
    pass


async def test_consumers_alternate_strictly(make_bus: MakeBus) -> None:
    a, b = await make_bus(), await make_bus()
    order: list[str] = []

    def tagged(name: str) -> Any:
        async def handler(message: Message, context: dict[str, Any]) -> None:
            order.append(name)

        return handler

    await a.serve("scheduler", tagged("a"))
    await b.serve("scheduler", tagged("b"))
    for n in range(6):
        await a.cast("scheduler", Ping(n=n))
    await wait_until(lambda: len(order) == 6)
    assert sorted(order[:2]) == ["a", "b"] and order.count("a") == 3


async def test_messages_of_a_cancelled_consumer_are_requeued(make_bus: MakeBus) -> None:
    """Deliveries a consumer had not started are handed to the next consumer."""
    a = await make_bus(max_concurrency=1)  # one handler at a time: the rest wait in its inbox
    release = asyncio.Event()
    seen_a: list[Message] = []

    async def stuck(message: Message, context: dict[str, Any]) -> None:
        seen_a.append(message)
        await release.wait()

    sub = await a.serve("compute.node-1", stuck)
    for n in range(3):
        await a.cast("compute.node-1", Ping(n=n))
    await wait_until(lambda: len(seen_a) == 1)
    await sub.cancel()
    release.set()
    seen_b: list[Message] = []
    b = await make_bus()
    await b.serve("compute.node-1", collector(seen_b))
    await wait_until(lambda: len(seen_b) == 2)
    assert seen_a == [Ping(n=0)] and seen_b == [Ping(n=1), Ping(n=2)]


async def test_separate_brokers_do_not_talk() -> None:
    one, two = MemoryTransport(registry=registry()), MemoryTransport(registry=registry())
    async with one, two:
        await one.serve("scheduler", collector([]))
        with pytest.raises(Exception, match="no queue"):
            await two.cast("scheduler", Ping(n=1))


async def test_unserializable_reply_becomes_a_remote_error(make_bus: MakeBus) -> None:
    class Weird(Message):
        NAME = "test.weird"
        value: Any

    async def handler(message: Message, context: dict[str, Any]) -> Message:
        return Weird(value=object())

    server, client = await make_bus(), await make_bus()
    await server.serve("conductor", handler)
    with pytest.raises(RemoteError, match="Serialization"):
        await client.call("conductor", Ping(n=1), timeout=2)
