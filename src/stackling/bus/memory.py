"""The in-process transport: asyncio queues with RabbitMQ's semantics.

Used by the all-in-one cloud and the fast tests. Transports that should talk to each other
share one :class:`MemoryBroker` (``create_transport("memory://")`` makes a fresh broker, so
an all-in-one process creates one transport and hands it to every service, or passes one
broker to several transports). Like the RabbitMQ transport it moves JSON bytes, so anything
that would not survive the wire fails here too.

Mirrors the broker: a served topic has one queue that outlives its consumers; consumers of
one queue get messages round-robin; messages taken by a consumer that goes away before
handling them are requeued; calls expire after their timeout; fanout copies a message to
every fanout subscriber of the topic.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from stackling.bus.errors import TransportClosed, Undeliverable
from stackling.bus.transport import Handler, Outgoing, Subscription, Transport
from stackling.common.ids import new_id

log = logging.getLogger("stackling.bus.memory")


@dataclass(slots=True)
class _Item:
    body: bytes
    deadline: float | None  # loop time after which nobody should handle it


@dataclass(eq=False)
class _Consumer:
    inbox: asyncio.Queue[_Item] = field(default_factory=asyncio.Queue)
    holding: _Item | None = None  # taken from the inbox, waiting for a handler slot


class _Queue:
    """One topic's queue: a backlog while nobody consumes, round-robin otherwise."""

    def __init__(self) -> None:
        self.backlog: deque[_Item] = deque()
        self.consumers: list[_Consumer] = []
        self._next = 0

    def put(self, item: _Item) -> None:
        if not self.consumers:
            self.backlog.append(item)
            return
        consumer = self.consumers[self._next % len(self.consumers)]
        self._next += 1
        consumer.inbox.put_nowait(item)

    def attach(self, consumer: _Consumer) -> None:
        self.consumers.append(consumer)
        backlog, self.backlog = self.backlog, deque()
        for item in backlog:
            self.put(item)

    def detach(self, consumer: _Consumer) -> None:
        if consumer in self.consumers:
            self.consumers.remove(consumer)
        for item in _drain(consumer):
            self.put(item)


def _drain(consumer: _Consumer) -> list[_Item]:
    items = [consumer.holding] if consumer.holding is not None else []
    consumer.holding = None
    while not consumer.inbox.empty():
        items.append(consumer.inbox.get_nowait())
    return items


class MemoryBroker:
    """The queues, fanout groups and reply mailboxes of one in-process bus."""

    def __init__(self) -> None:
        self._queues: dict[str, _Queue] = {}
        self._fanout: dict[str, list[_Consumer]] = {}
        self._mailboxes: dict[str, Callable[[bytes], None]] = {}

    def publish(self, out: Outgoing) -> None:
        item = _Item(out.body, out.expires_at)
        if out.fanout:
            for consumer in self._fanout.get(out.topic, ()):
                consumer.inbox.put_nowait(item)
            return
        queue = self._queues.get(out.topic)
        if queue is None:
            if out.mandatory:
                raise Undeliverable(f"no queue exists for topic {out.topic!r}")
            return
        queue.put(item)

    def attach(self, topic: str, consumer: _Consumer, fanout: bool) -> None:
        if fanout:
            self._fanout.setdefault(topic, []).append(consumer)
        else:
            self._queues.setdefault(topic, _Queue()).attach(consumer)

    def detach(self, topic: str, consumer: _Consumer, fanout: bool) -> None:
        if fanout:
            group = self._fanout.get(topic, [])
            if consumer in group:
                group.remove(consumer)
            _drain(consumer)  # fanout copies die with their subscriber
        elif topic in self._queues:
            self._queues[topic].detach(consumer)

    def open_mailbox(self, address: str, deliver: Callable[[bytes], None]) -> None:
        self._mailboxes[address] = deliver

    def close_mailbox(self, address: str) -> None:
        self._mailboxes.pop(address, None)

    def reply(self, address: str, body: bytes) -> None:
        deliver = self._mailboxes.get(address)
        if deliver is None:
            log.debug("dropping reply to closed mailbox %s", address)
            return
        deliver(body)


class _MemorySubscription(Subscription):
    def __init__(
        self,
        transport: MemoryTransport,
        consumer: _Consumer,
        topic: str,
        fanout: bool,
        task: asyncio.Task[None],
    ) -> None:
        self.topic = topic
        self.fanout = fanout
        self._transport = transport
        self._consumer = consumer
        self._task = task
        self._cancelled = False

    async def cancel(self) -> None:
        if self._cancelled:
            return
        self._cancelled = True
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._transport.broker.detach(self.topic, self._consumer, self.fanout)
        with contextlib.suppress(ValueError):
            self._transport._subscriptions.remove(self)


class MemoryTransport(Transport):
    """In-process transport. See the module docstring and :class:`Transport`."""

    def __init__(self, broker: MemoryBroker | None = None, **options: Any) -> None:
        super().__init__(**options)
        self.broker = broker if broker is not None else MemoryBroker()
        self._address = f"reply.{new_id()}"

    @classmethod
    def from_url(cls, url: str, *, call_timeout: float = 60.0) -> MemoryTransport:
        return cls(call_timeout=call_timeout)

    def __repr__(self) -> str:
        return f"<MemoryTransport {self._address}>"

    @property
    def reply_address(self) -> str:
        return self._address

    async def _connect(self) -> None:
        self.broker.open_mailbox(self._address, self._on_reply)

    async def _disconnect(self) -> None:
        self.broker.close_mailbox(self._address)

    async def _publish(self, out: Outgoing, deadline: float) -> None:
        self.broker.publish(out)
        await asyncio.sleep(0)  # a real broker round trip yields too

    async def _send_reply(self, reply_to: str, correlation_id: str, body: bytes) -> None:
        self.broker.reply(reply_to, body)

    async def _subscribe(self, topic: str, handler: Handler, fanout: bool) -> Subscription:
        consumer = _Consumer()
        self.broker.attach(topic, consumer, fanout)
        task = asyncio.create_task(self._consume(consumer, handler))
        return _MemorySubscription(self, consumer, topic, fanout, task)

    async def _consume(self, consumer: _Consumer, handler: Handler) -> None:
        loop = asyncio.get_running_loop()
        while True:
            item = await consumer.inbox.get()
            if item.deadline is not None and loop.time() > item.deadline:
                log.debug("dropping expired message")
                continue
            consumer.holding = item  # requeued by detach() if we stop before handling it
            try:
                await self._dispatcher.accept(handler, item.body)
            except TransportClosed:
                return
            consumer.holding = None
