"""The bus contract: behaviour every transport must show, run against each of them.

A test module subclasses :class:`BusContract` and provides a ``make_bus`` fixture: an async
factory ``make_bus(registry=None) -> Transport`` returning *started* transports that all
talk to the same broker (each with its own registry, like separate nodes).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from stackling.bus import (
    CallTimeout,
    Empty,
    IncompatibleMessage,
    MalformedMessage,
    Message,
    MessageRegistry,
    Notification,
    RemoteError,
    Transport,
    TransportClosed,
    Undeliverable,
    UnexpectedReply,
    UnknownMessage,
)
from stackling.common.context import RequestContext
from stackling.common.errors import NotFound

MakeBus = Callable[..., Awaitable[Transport]]


class Ping(Message):
    NAME = "test.ping"
    VERSION = "1.0"
    n: int


class Pong(Message):
    NAME = "test.pong"
    VERSION = "1.0"
    n: int


class PingV11(Message):
    """Ping one minor version later: one more field, with a default."""

    NAME = "test.ping"
    VERSION = "1.1"
    n: int
    flavor: str = "m1.tiny"


class PingV2(Message):
    NAME = "test.ping"
    VERSION = "2.0"
    count: int


class Secret(Message):
    NAME = "test.unregistered"
    VERSION = "1.0"


def registry(*classes: type[Message]) -> MessageRegistry:
    reg = MessageRegistry()
    for cls in classes or (Ping, Pong):
        reg.register(cls)
    return reg


async def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


def pong(seen: list[tuple[Message, dict[str, Any]]] | None = None) -> Any:
    async def handler(message: Message, context: dict[str, Any]) -> Message:
        if seen is not None:
            seen.append((message, context))
        assert isinstance(message, Ping)
        return Pong(n=message.n + 1)

    return handler


def collector(seen: list[Message]) -> Any:
    async def handler(message: Message, context: dict[str, Any]) -> None:
        seen.append(message)

    return handler


class BusContract:
    """Shared tests; subclasses provide the ``make_bus`` fixture."""

    @pytest.fixture
    def topic(self) -> str:
        """A fresh topic per test: queues on a real broker outlive the test."""
        return f"test-{uuid.uuid4().hex[:10]}"

    # -- call -------------------------------------------------------------------------------

    async def test_call_returns_the_reply_and_carries_context(
        self, make_bus: MakeBus, topic: str
    ) -> None:
        server, client = await make_bus(), await make_bus()
        seen: list[tuple[Message, dict[str, Any]]] = []
        await server.serve(topic, pong(seen))
        ctx = RequestContext(request_id="req-1", user_id="u1", roles=("admin",), token="tok")
        reply = await client.call(topic, Ping(n=41), timeout=5, context=ctx, returns=Pong)
        assert reply == Pong(n=42)
        ((_, context),) = seen
        assert context["request_id"] == "req-1"
        assert context["roles"] == ["admin"]
        assert "token" not in context  # tokens never travel on the bus

    async def test_handler_returning_none_replies_empty(
        self, make_bus: MakeBus, topic: str
    ) -> None:
        server, client = await make_bus(), await make_bus()
        await server.serve(topic, collector([]))
        assert isinstance(await client.call(topic, Ping(n=1), timeout=5), Empty)

    async def test_call_checks_the_reply_type(self, make_bus: MakeBus, topic: str) -> None:
        server, client = await make_bus(), await make_bus()
        await server.serve(topic, pong())
        with pytest.raises(UnexpectedReply):
            await client.call(topic, Ping(n=1), timeout=5, returns=Ping)

    async def test_call_times_out(self, make_bus: MakeBus, topic: str) -> None:
        server, client = await make_bus(), await make_bus()

        async def slow(message: Message, context: dict[str, Any]) -> Message:
            await asyncio.sleep(1)
            return Pong(n=0)

        await server.serve(topic, slow)
        started = time.monotonic()
        with pytest.raises(CallTimeout) as err:
            await client.call(topic, Ping(n=1), timeout=0.3)
        assert 0.25 < time.monotonic() - started < 2.0
        assert err.value.topic == topic

    async def test_expired_call_is_never_handled(self, make_bus: MakeBus, topic: str) -> None:
        server, client = await make_bus(), await make_bus()
        seen: list[Message] = []
        sub = await server.serve(topic, collector(seen))
        await sub.cancel()  # the queue stays, nobody consumes it
        with pytest.raises(CallTimeout):
            await client.call(topic, Ping(n=1), timeout=0.2)
        await server.cast(topic, Ping(n=2))
        await server.serve(topic, collector(seen))
        await wait_until(lambda: len(seen) >= 1)
        await asyncio.sleep(0.2)
        assert seen == [Ping(n=2)], seen  # the expired call was dropped, the cast waited

    async def test_unserved_topic_is_undeliverable(self, make_bus: MakeBus, topic: str) -> None:
        client = await make_bus()
        started = time.monotonic()
        with pytest.raises(Undeliverable):
            await client.call(topic, Ping(n=1), timeout=5)
        with pytest.raises(Undeliverable):
            await client.cast(topic, Ping(n=1))
        assert time.monotonic() - started < 2.0  # fails fast, no timeout

    async def test_remote_exception_comes_back_as_remote_error(
        self, make_bus: MakeBus, topic: str
    ) -> None:
        server, client = await make_bus(), await make_bus()

        async def failing(message: Message, context: dict[str, Any]) -> Message:
            assert isinstance(message, Ping)
            if message.n == 0:
                raise NotFound("Instance abc could not be found.")
            raise ValueError("bad value")

        await server.serve(topic, failing)
        with pytest.raises(RemoteError) as err:
            await client.call(topic, Ping(n=0), timeout=5)
        assert (err.value.exc_type, err.value.code) == ("NotFound", 404)
        assert err.value.remote_message == "Instance abc could not be found."
        with pytest.raises(RemoteError) as err:
            await client.call(topic, Ping(n=1), timeout=5)
        assert (err.value.exc_type, err.value.code) == ("ValueError", 500)
        assert "Traceback" not in str(err.value) and "File " not in str(err.value)

    async def test_handler_returning_a_non_message_is_a_remote_error(
        self, make_bus: MakeBus, topic: str
    ) -> None:
        server, client = await make_bus(), await make_bus()

        async def bad(message: Message, context: dict[str, Any]) -> Any:
            return {"n": 1}

        await server.serve(topic, bad)
        with pytest.raises(RemoteError, match="TypeError"):
            await client.call(topic, Ping(n=1), timeout=5)

    async def test_handlers_run_concurrently(self, make_bus: MakeBus, topic: str) -> None:
        server, client = await make_bus(), await make_bus()
        gate = asyncio.Event()

        async def handler(message: Message, context: dict[str, Any]) -> Message:
            assert isinstance(message, Ping)
            if message.n == 1:
                await gate.wait()  # only the second call can release the first
            else:
                gate.set()
            return Pong(n=message.n)

        await server.serve(topic, handler)
        replies = await asyncio.gather(
            client.call(topic, Ping(n=1), timeout=5), client.call(topic, Ping(n=2), timeout=5)
        )
        assert replies == [Pong(n=1), Pong(n=2)]

    # -- cast -------------------------------------------------------------------------------

    async def test_cast_load_balances_between_consumers(
        self, make_bus: MakeBus, topic: str
    ) -> None:
        a, b, client = await make_bus(), await make_bus(), await make_bus()
        seen_a: list[Message] = []
        seen_b: list[Message] = []
        await a.serve(topic, collector(seen_a))
        await b.serve(topic, collector(seen_b))
        for n in range(20):
            await client.cast(topic, Ping(n=n))
        await wait_until(lambda: len(seen_a) + len(seen_b) == 20)
        await asyncio.sleep(0.1)
        got = sorted(m.n for m in seen_a + seen_b if isinstance(m, Ping))
        assert got == list(range(20))  # each cast handled exactly once
        assert len(seen_a) >= 5 and len(seen_b) >= 5  # round-robin, not one consumer

    async def test_cast_waits_in_the_queue_for_a_consumer(
        self, make_bus: MakeBus, topic: str
    ) -> None:
        server, client = await make_bus(), await make_bus()
        seen: list[Message] = []
        sub = await server.serve(topic, collector(seen))
        await sub.cancel()
        await client.cast(topic, Ping(n=7))
        await asyncio.sleep(0.1)
        assert seen == []
        await server.serve(topic, collector(seen))
        await wait_until(lambda: seen == [Ping(n=7)])

    async def test_failing_cast_handler_keeps_the_consumer_alive(
        self, make_bus: MakeBus, topic: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        server, client = await make_bus(), await make_bus()

        async def handler(message: Message, context: dict[str, Any]) -> Message:
            assert isinstance(message, Ping)
            if message.n < 0:
                raise RuntimeError("boom")
            return Pong(n=message.n)

        await server.serve(topic, handler)
        with caplog.at_level(logging.ERROR, logger="stackling.bus"):
            await client.cast(topic, Ping(n=-1))
            assert await client.call(topic, Ping(n=3), timeout=5) == Pong(n=3)
        assert any("RuntimeError" in r.getMessage() for r in caplog.records)

    # -- fanout and notifications -----------------------------------------------------------

    async def test_fanout_reaches_every_subscriber(self, make_bus: MakeBus, topic: str) -> None:
        a, b, client = await make_bus(), await make_bus(), await make_bus()
        seen: list[list[Message]] = [[], [], []]
        await a.serve(topic, collector(seen[0]), fanout=True)
        await a.serve(topic, collector(seen[1]), fanout=True)
        await b.serve(topic, collector(seen[2]), fanout=True)
        await client.fanout(topic, Ping(n=5))
        await wait_until(lambda: all(s == [Ping(n=5)] for s in seen))
        await asyncio.sleep(0.1)
        assert all(s == [Ping(n=5)] for s in seen)

    async def test_fanout_without_subscribers_is_dropped(
        self, make_bus: MakeBus, topic: str
    ) -> None:
        client = await make_bus()
        await client.fanout(topic, Ping(n=1))  # no error
        seen: list[Message] = []
        sub = await client.serve(topic, collector(seen), fanout=True)
        await sub.cancel()
        await client.fanout(topic, Ping(n=2))
        await client.serve(topic, collector(seen), fanout=True)
        await client.fanout(topic, Ping(n=3))
        await wait_until(lambda: bool(seen))
        await asyncio.sleep(0.1)
        assert seen == [Ping(n=3)]

    async def test_notify(self, make_bus: MakeBus) -> None:
        listener, emitter = await make_bus(), await make_bus()
        seen: list[Message] = []
        # notifications.* queues are shared by every test: subscribe to a rarely-used one
        await listener.serve("notifications.sample", collector(seen))
        marker = uuid.uuid4().hex
        await emitter.notify(
            "compute.instance.create.end", {"marker": marker}, "SAMPLE", publisher_id="c-1"
        )
        await wait_until(
            lambda: any(
                isinstance(m, Notification) and m.payload == {"marker": marker} for m in seen
            )
        )
        note = next(m for m in seen if isinstance(m, Notification))
        assert note.event_type == "compute.instance.create.end"
        assert (note.priority, note.publisher_id) == ("sample", "c-1")
        await emitter.notify("x.y", {}, "audit")  # nobody listens: dropped, no error
        with pytest.raises(ValueError):
            await emitter.notify("x.y", {}, "loud")

    # -- versions ---------------------------------------------------------------------------

    async def test_newer_minor_is_accepted_and_unknown_fields_ignored(
        self, make_bus: MakeBus, topic: str
    ) -> None:
        server = await make_bus(registry(Ping, Pong))
        client = await make_bus(registry(PingV11, Pong))
        seen: list[tuple[Message, dict[str, Any]]] = []
        await server.serve(topic, pong(seen))
        assert await client.call(topic, PingV11(n=1, flavor="m1.big"), timeout=5) == Pong(n=2)
        assert seen[0][0] == Ping(n=1)

    async def test_older_minor_is_accepted_and_defaults_fill(
        self, make_bus: MakeBus, topic: str
    ) -> None:
        server = await make_bus(registry(PingV11, Pong))
        client = await make_bus(registry(Ping, Pong))
        seen: list[Message] = []
        await server.serve(topic, collector(seen))
        await client.call(topic, Ping(n=1), timeout=5)
        assert seen == [PingV11(n=1, flavor="m1.tiny")]

    async def test_other_major_is_a_clear_error_not_a_crash(
        self, make_bus: MakeBus, topic: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        server = await make_bus(registry(Ping, Pong))
        client = await make_bus(registry(PingV2, Pong))
        await server.serve(topic, pong())
        with pytest.raises(IncompatibleMessage, match=r"2\.0.*1\.0") as err:
            await client.call(topic, PingV2(count=1), timeout=5)
        assert err.value.remote
        with caplog.at_level(logging.WARNING, logger="stackling.bus"):
            await client.cast(topic, PingV2(count=1))  # logged by the consumer...
            await wait_until(lambda: "incompatible" in caplog.text)
        old = await make_bus(registry(Ping, Pong))
        assert await old.call(topic, Ping(n=1), timeout=5) == Pong(n=2)  # ...which lives on

    async def test_reply_of_another_major_is_refused_by_the_caller(
        self, make_bus: MakeBus, topic: str
    ) -> None:
        class PongV3(Message):
            NAME = "test.pong"
            VERSION = "3.0"
            n: int

        server = await make_bus(registry(Ping, PongV3))
        client = await make_bus(registry(Ping, Pong))

        async def handler(message: Message, context: dict[str, Any]) -> Message:
            return PongV3(n=1)

        await server.serve(topic, handler)
        with pytest.raises(IncompatibleMessage) as err:
            await client.call(topic, Ping(n=1), timeout=5)
        assert not err.value.remote

    async def test_unknown_and_malformed_messages(self, make_bus: MakeBus, topic: str) -> None:
        server = await make_bus(registry(Ping, Pong))
        client = await make_bus(registry(Ping, Pong))
        await server.serve(topic, pong())
        with pytest.raises(UnknownMessage, match=r"test\.unregistered"):
            await client.call(topic, Secret(), timeout=5)

        class PingMissingN(Message):
            NAME = "test.ping"
            VERSION = "1.2"
            password: str = "hunter2"

        with pytest.raises(MalformedMessage, match="n: Field required") as err:
            await client.call(topic, PingMissingN(), timeout=5)
        assert "hunter2" not in str(err.value)

    # -- lifecycle --------------------------------------------------------------------------

    async def test_close_fails_pending_calls_and_later_use(
        self, make_bus: MakeBus, topic: str
    ) -> None:
        server, client = await make_bus(), await make_bus()
        release = asyncio.Event()

        async def stuck(message: Message, context: dict[str, Any]) -> None:
            await release.wait()

        await server.serve(topic, stuck)
        pending = asyncio.create_task(client.call(topic, Ping(n=1), timeout=10))
        await asyncio.sleep(0.2)
        await client.close()
        with pytest.raises(TransportClosed):
            await pending
        with pytest.raises(TransportClosed):
            await client.cast(topic, Ping(n=1))
        release.set()
