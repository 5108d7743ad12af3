"""The bus interface. Every transport (memory, amqp) gives these exact semantics.

Addressing: a *topic* is a dotted name (``scheduler``, ``compute.node-1``,
``notifications.info``). Serving a topic declares its queue; the queue outlives the consumer
(messages wait there until a consumer comes back, calls only until their timeout).

``call(topic, message, timeout)``
    Deliver to ONE consumer of ``topic`` and wait for its reply message.
    Raises :class:`CallTimeout` when no reply arrives in time (the request expires in the
    queue at the same moment, but a consumer that already took it still acts on it);
    :class:`Undeliverable` when nobody ever served the topic; :class:`RemoteError` (class
    name, message and HTTP code of the remote exception, never a traceback) when the handler
    raised; :class:`UnknownMessage` / :class:`IncompatibleMessage` / :class:`MalformedMessage`
    when either side could not decode the other's message. A handler returning ``None``
    replies :class:`Empty`.
``cast(topic, message)``
    Fire and forget to ONE consumer; competing consumers of a topic are load-balanced
    round-robin. Returns once the broker has the message (publisher confirm). Delivery is
    at most once: the message is acknowledged when its handler starts, so a consumer dying
    mid-handler loses it (agents reconcile on restart instead). Handler errors and decode
    errors are logged on the consumer, never returned. Raises :class:`Undeliverable` when
    nobody ever served the topic, :class:`TransportUnavailable` when the broker stays away
    longer than ``call_timeout``.
``fanout(topic, message)``
    To EVERY consumer currently subscribed with ``serve(topic, h, fanout=True)``; with no
    subscriber the message is dropped (not an error). Fanout subscriptions do not outlive
    their consumer.
``notify(event_type, payload, priority="info")``
    Publish a :class:`Notification` on topic ``notifications.<priority>``; subscribers
    ``serve()`` that topic and compete like cast consumers. Dropped if no one ever served it.
``serve(topic, handler, *, fanout=False)``
    Consume ``topic``; ``handler(message, context)`` runs as its own task (at most
    ``max_concurrency`` at once per transport). A failing handler never stops the consumer
    loop. Returns a :class:`Subscription`; ``cancel()`` it to stop consuming.
``start()`` / ``close()``
    ``start`` raises :class:`TransportUnavailable` if the broker cannot be reached. After
    ``close`` (which stops consuming, waits up to ``close_grace`` seconds for running
    handlers, then cancels them) calls in flight raise :class:`TransportClosed`. Always
    ``close()`` a started transport. Queues of served topics stay on the broker by design;
    an operator deletes those of a retired host.

Broker outage (after a successful start): the transport reconnects by itself and restores
its queues, bindings and consumers. Meanwhile publishes wait for the broker: a call until
its timeout (then :class:`CallTimeout`), a cast, fanout or notify up to ``call_timeout``
(then :class:`TransportUnavailable`), a new ``serve`` likewise. Running handlers keep
running; their replies are sent once the broker is back.
"""

from __future__ import annotations

import asyncio
import logging
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from types import TracebackType
from typing import Any, overload

from stackling.bus.dispatch import Dispatcher, Handler
from stackling.bus.errors import (
    MESSAGE_ERRORS,
    CallTimeout,
    MalformedMessage,
    RemoteError,
    TransportClosed,
    UnexpectedReply,
)
from stackling.bus.message import (
    ContextArg,
    Envelope,
    M,
    Message,
    MessageRegistry,
    Notification,
    default_registry,
)

log = logging.getLogger("stackling.bus")

__all__ = ["Handler", "Outgoing", "Subscription", "Transport"]

NOTIFY_PRIORITIES = frozenset(
    {"audit", "debug", "info", "warn", "warning", "error", "critical", "sample"}
)
_TOPIC_RE = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")


def check_topic(topic: str) -> str:
    if len(topic) > 200 or not _TOPIC_RE.match(topic):
        raise ValueError(f"invalid bus topic {topic!r}")
    return topic


def notification_topic(priority: str) -> str:
    return f"notifications.{priority}"


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message for a transport to publish."""

    topic: str
    body: bytes
    msg_id: str
    fanout: bool = False
    reply_to: str | None = None
    expires_at: float | None = None  # loop time; dropped if no consumer took it by then
    mandatory: bool = True  # raise Undeliverable when no queue exists for the topic
    persistent: bool = False  # survive a broker restart (durable queue + persistent message)


class Subscription(ABC):
    """A running consumer of one topic."""

    topic: str
    fanout: bool

    @abstractmethod
    async def cancel(self) -> None:
        """Stop consuming (idempotent). Handlers already running finish on their own."""


class Transport(ABC):
    """Base of all transports: the public API lives here, transports supply primitives."""

    def __init__(
        self,
        *,
        call_timeout: float = 60.0,
        registry: MessageRegistry | None = None,
        max_concurrency: int = 64,
        close_grace: float = 5.0,
    ) -> None:
        if call_timeout <= 0:
            raise ValueError("call_timeout must be positive")
        self.call_timeout = call_timeout
        self.registry = registry if registry is not None else default_registry
        self.max_concurrency = max_concurrency
        self.close_grace = close_grace
        self._dispatcher = Dispatcher(self.registry, self._send_reply, max_concurrency)
        self._pending: dict[str, asyncio.Future[Envelope]] = {}
        self._subscriptions: list[Subscription] = []
        self._started = False
        self._closed = False

    # -- primitives each transport implements -------------------------------------------

    @classmethod
    @abstractmethod
    def from_url(cls, url: str, *, call_timeout: float = 60.0) -> Transport:
        """Build a transport from a bus URL (see :func:`stackling.bus.create_transport`)."""

    @abstractmethod
    async def _connect(self) -> None:
        """Connect and set up the reply address. Raise TransportUnavailable on failure."""

    @abstractmethod
    async def _disconnect(self) -> None:
        """Release everything ``_connect`` made."""

    @property
    @abstractmethod
    def reply_address(self) -> str:
        """Where replies to this transport's calls are sent."""

    @abstractmethod
    async def _publish(self, out: Outgoing, deadline: float) -> None:
        """Hand ``out`` to the broker by ``deadline`` (loop time) or raise
        Undeliverable / TransportUnavailable."""

    @abstractmethod
    async def _send_reply(self, reply_to: str, correlation_id: str, body: bytes) -> None:
        """Send a reply body; a reply nobody waits for any more is silently dropped."""

    @abstractmethod
    async def _subscribe(self, topic: str, handler: Handler, fanout: bool) -> Subscription:
        """Start consuming; hand each delivery to ``self._dispatcher.accept``."""

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        if self._closed:
            raise TransportClosed("transport already closed")
        if not self._started:
            await self._connect()
            self._started = True

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for sub in list(self._subscriptions):
            try:
                await sub.cancel()
            except Exception as exc:  # the broker may be gone already
                log.debug("cancelling subscription to %s failed: %r", sub.topic, exc)
        self._subscriptions.clear()
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(TransportClosed("transport closed while waiting for a reply"))
        await self._dispatcher.drain(self.close_grace)
        if self._started:
            await self._disconnect()

    async def __aenter__(self) -> Transport:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def _ensure_open(self) -> None:
        if not self._started or self._closed:
            raise TransportClosed("transport is not running (call start() first)")

    # -- the public API ---------------------------------------------------------------------

    @overload
    async def call(
        self,
        topic: str,
        message: Message,
        timeout: float | None = None,  # noqa: ASYNC109 - also the message's TTL
        *,
        context: ContextArg = None,
    ) -> Message: ...

    @overload
    async def call(
        self,
        topic: str,
        message: Message,
        timeout: float | None = None,  # noqa: ASYNC109 - also the message's TTL
        *,
        context: ContextArg = None,
        returns: type[M],
    ) -> M: ...

    async def call(
        self,
        topic: str,
        message: Message,
        timeout: float | None = None,  # noqa: ASYNC109 - also the message's TTL
        *,
        context: ContextArg = None,
        returns: type[Message] | None = None,
    ) -> Message:
        """Send to one consumer and wait for the reply (``returns`` checks its type)."""
        check_topic(topic)
        self._ensure_open()
        timeout = self.call_timeout if timeout is None else timeout
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        env = self.registry.wrap(message, context=context, reply_to=self.reply_address)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        future: asyncio.Future[Envelope] = loop.create_future()
        self._pending[env.msg_id] = future
        out = Outgoing(
            topic, env.to_bytes(), env.msg_id, reply_to=self.reply_address, expires_at=deadline
        )
        try:
            async with asyncio.timeout_at(deadline):
                await self._publish(out, deadline)
                reply = await future
        except TimeoutError:
            raise CallTimeout(topic, type(message).NAME, timeout) from None
        finally:
            self._pending.pop(env.msg_id, None)
        result = self._unwrap(reply)
        if returns is not None and not isinstance(result, returns):
            raise UnexpectedReply(
                f"call {type(message).NAME!r} expected {returns.NAME!r}, got {type(result).NAME!r}"
            )
        return result

    async def cast(self, topic: str, message: Message, *, context: ContextArg = None) -> None:
        """Send to one consumer of ``topic``; do not wait for it to be handled."""
        await self._send(topic, message, context=context, fanout=False)

    async def fanout(self, topic: str, message: Message, *, context: ContextArg = None) -> None:
        """Send to every consumer subscribed to ``topic`` with ``fanout=True``."""
        await self._send(topic, message, context=context, fanout=True)

    async def notify(
        self,
        event_type: str,
        payload: dict[str, Any],
        priority: str = "info",
        *,
        publisher_id: str = "",
        context: ContextArg = None,
    ) -> None:
        """Publish a notification on ``notifications.<priority>``."""
        priority = priority.lower()
        if priority not in NOTIFY_PRIORITIES:
            raise ValueError(f"unknown notification priority {priority!r}")
        note = Notification(
            event_type=event_type, priority=priority, payload=payload, publisher_id=publisher_id
        )
        await self._send(notification_topic(priority), note, context=context, mandatory=False)

    async def serve(self, topic: str, handler: Handler, *, fanout: bool = False) -> Subscription:
        """Consume ``topic`` with ``handler`` until the subscription or transport closes."""
        check_topic(topic)
        self._ensure_open()
        sub = await self._subscribe(topic, handler, fanout)
        self._subscriptions.append(sub)
        return sub

    # -- shared machinery for transports ----------------------------------------------------

    async def _send(
        self,
        topic: str,
        message: Message,
        *,
        context: ContextArg,
        fanout: bool = False,
        mandatory: bool = True,
    ) -> None:
        check_topic(topic)
        self._ensure_open()
        env = self.registry.wrap(message, context=context)
        out = Outgoing(
            topic,
            env.to_bytes(),
            env.msg_id,
            fanout=fanout,
            mandatory=mandatory and not fanout,
            persistent=not fanout,
        )
        await self._publish(out, asyncio.get_running_loop().time() + self.call_timeout)

    def _unwrap(self, reply: Envelope) -> Message:
        if reply.error is not None:
            err = reply.error
            local = MESSAGE_ERRORS.get(err.type)
            if local is not None:
                raise local(f"remote side: {err.message}", remote=True)
            raise RemoteError(err.type, err.message, err.code)
        return self.registry.decode(reply)

    def _on_reply(self, body: bytes) -> None:
        """Transports call this with every body arriving at :attr:`reply_address`."""
        try:
            env = Envelope.from_bytes(body)
        except MalformedMessage as exc:
            log.warning("dropping undecodable reply: %s", exc)
            return
        future = self._pending.get(env.correlation_id or "")
        if future is None or future.done():
            log.debug("dropping late reply to %s", env.correlation_id)
            return
        future.set_result(env)
