"""The bus contract against a real RabbitMQ node, plus broker restarts.

The module starts its own private node (own ports, own epmd, own Erlang cookie and data
under a tmp dir, listening on 127.0.0.1 only) and never touches a system RabbitMQ.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from stackling.bus import (
    CallTimeout,
    Message,
    MessageRegistry,
    RabbitTransport,
    Transport,
    TransportUnavailable,
)
from tests.integration.rabbit import CTL, SERVER, RabbitNode

try:
    from tests.unit.bus.contract import BusContract, MakeBus, Ping, Pong, collector, registry
except ModuleNotFoundError:  # this file run on its own: make the repo root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from tests.unit.bus.contract import BusContract, MakeBus, Ping, Pong, collector, registry


pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        SERVER is None or CTL is None,
        reason="rabbitmq-server is not installed (apt-get install rabbitmq-server)",
    ),
]


@pytest.fixture(scope="module")
def rabbit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RabbitNode]:
    node = RabbitNode(tmp_path_factory.mktemp("rabbitmq"))
    try:
        node.start()
        yield node
    finally:
        node.stop()


@pytest.fixture
async def make_bus(rabbit: RabbitNode) -> AsyncIterator[MakeBus]:
    made: list[Transport] = []

    async def make(reg: MessageRegistry | None = None, **options: Any) -> Transport:
        options.setdefault("call_timeout", 5)
        transport = RabbitTransport(
            rabbit.url, registry=reg or registry(), reconnect_interval=0.5, **options
        )
        await transport.start()
        made.append(transport)
        return transport

    yield make
    for transport in made:
        await transport.close()


class TestRabbitContract(BusContract):
    pass


async def _wait_for(predicate: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("how", ["kill", "stop_app"])
async def test_survives_broker_restart(
    rabbit: RabbitNode, make_bus: MakeBus, how: str, caplog: pytest.LogCaptureFixture
) -> None:
    topic = f"restart-{uuid.uuid4().hex[:8]}"
    server = await make_bus()
    client = await make_bus(call_timeout=30)
    casts: list[Message] = []
    fans: list[Message] = []
    gate = asyncio.Event()

    async def handler(message: Message, context: dict[str, Any]) -> Message | None:
        assert isinstance(message, Ping)
        casts.append(message)
        if message.n < 0:
            await gate.wait()  # still working when the broker goes away
        return Pong(n=message.n + 1)

    await server.serve(topic, handler)
    await server.serve(topic, collector(fans), fanout=True)
    assert await client.call(topic, Ping(n=1), timeout=5) == Pong(n=2)
    bystander = await make_bus()
    impatient = await make_bus(call_timeout=1)
    await bystander.serve(topic, collector([]), fanout=True)
    in_flight = asyncio.create_task(client.call(topic, Ping(n=-5), timeout=25))
    await _wait_for(lambda: Ping(n=-5) in casts, 5)
    attempts = [bus.connection.connection_attempt for bus in (server, client)]  # type: ignore[attr-defined]

    caplog.set_level(logging.DEBUG)
    if how == "kill":
        await asyncio.to_thread(rabbit.kill)
    else:
        assert (await asyncio.to_thread(rabbit.ctl, "stop_app")).returncode == 0
    # A cast while the broker is away waits for it (up to call_timeout) instead of failing.
    pending = asyncio.create_task(client.cast(topic, Ping(n=100)))
    with pytest.raises(TransportUnavailable):  # ...but no longer than call_timeout
        await impatient.cast(topic, Ping(n=101))
    with pytest.raises(CallTimeout):
        await impatient.call(topic, Ping(n=102), timeout=0.5)
    assert not pending.done()
    started = time.monotonic()
    await bystander.close()  # closing while the broker is away does not hang
    assert time.monotonic() - started < 15
    if how == "kill":
        await asyncio.to_thread(rabbit.start)
    else:
        assert (await asyncio.to_thread(rabbit.ctl, "start_app")).returncode == 0
        await asyncio.to_thread(rabbit.await_startup)
    await asyncio.wait_for(pending, 30)
    # Both connections really were re-established, and the reply queue re-declared.
    await _wait_for(
        lambda: (
            [bus.connection.connection_attempt for bus in (server, client)]  # type: ignore[attr-defined]
            == [n + 1 for n in attempts]
        ),
        20,
    )
    queues = (await asyncio.to_thread(rabbit.ctl, "list_queues", "-q", "name")).stdout.split()
    assert client.reply_address in queues  # type: ignore[attr-defined]

    # A call that was being handled while the broker was away still gets its reply.
    gate.set()
    assert await asyncio.wait_for(in_flight, 25) == Pong(n=-4)

    # The same transport objects work again: consumers, the reply queue, fanout bindings.
    assert await client.call(topic, Ping(n=2), timeout=20) == Pong(n=3)
    await _wait_for(lambda: Ping(n=100) in casts, 20)
    await client.fanout(topic, Ping(n=7))
    await _wait_for(lambda: fans == [Ping(n=7)], 20)
    await client.cast(topic, Ping(n=8))
    await _wait_for(lambda: Ping(n=8) in casts, 20)
    assert RabbitNode.PASSWORD not in caplog.text


async def test_start_fails_clearly_when_credentials_are_wrong(rabbit: RabbitNode) -> None:
    bus = RabbitTransport(rabbit.url.replace(rabbit.PASSWORD, "wrong-pw"))
    with pytest.raises(TransportUnavailable) as err:
        await bus.start()
    assert "wrong-pw" not in str(err.value)
