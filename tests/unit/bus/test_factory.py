"""create_transport and the plugin table."""

from __future__ import annotations

import logging

import pytest

from stackling.bus import (
    TRANSPORTS,
    MemoryTransport,
    RabbitTransport,
    TransportClosed,
    TransportUnavailable,
    create_transport,
    redact_url,
)

from .contract import Ping


def test_plugin_table() -> None:
    assert TRANSPORTS["memory"] is MemoryTransport
    assert TRANSPORTS["amqp"] is RabbitTransport


def test_create_by_scheme() -> None:
    mem = create_transport("memory://", call_timeout=3)
    assert isinstance(mem, MemoryTransport) and mem.call_timeout == 3
    amqp = create_transport("amqp://nova:pw@rabbit.example:5672/cloud")
    assert isinstance(amqp, RabbitTransport) and amqp.call_timeout == 60.0
    assert "pw" not in repr(amqp)


def test_unknown_scheme_does_not_leak_the_password() -> None:
    with pytest.raises(ValueError, match="unknown bus URL scheme 'kafka'") as err:
        create_transport("kafka://admin:topsecret@host/")
    assert "topsecret" not in str(err.value)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("amqp://nova:s3cret@h:5672/vh", "amqp://nova:***@h:5672/vh"),
        ("amqp://nova@h/", "amqp://nova@h/"),
        ("amqp://h/?password=x", "amqp://h/"),
        ("amqp://u:p%40ss@h/", "amqp://u:***@h/"),
        ("memory://", "memory://"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


async def test_use_before_start_is_refused() -> None:
    bus = create_transport("memory://")
    with pytest.raises(TransportClosed):
        await bus.cast("scheduler", Ping(n=1))
    await bus.close()
    with pytest.raises(TransportClosed):
        await bus.start()


async def test_unreachable_broker(unused_tcp_port: int, caplog: pytest.LogCaptureFixture) -> None:
    bus = create_transport(f"amqp://nova:hunter2@127.0.0.1:{unused_tcp_port}/")
    with caplog.at_level(logging.DEBUG), pytest.raises(TransportUnavailable) as err:
        await bus.start()
    assert "hunter2" not in str(err.value) and "hunter2" not in caplog.text
    assert "***" in str(err.value)


@pytest.mark.parametrize("topic", ["", "a..b", "a b", "compute/1", "x" * 201, ".a"])
async def test_invalid_topics(topic: str) -> None:
    async with MemoryTransport() as bus:
        with pytest.raises(ValueError, match="invalid bus topic"):
            await bus.cast(topic, Ping(n=1))
