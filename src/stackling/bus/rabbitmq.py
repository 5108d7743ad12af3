"""The RabbitMQ transport (aio-pika robust connection).

Broker layout, for an exchange name ``stackling`` (the default):

* ``stackling`` — durable topic exchange. Serving topic ``T`` declares the durable queue
  ``stackling.T`` bound with routing key ``T``; casts (persistent) and calls (non-persistent,
  ``expiration`` = call timeout) are published there with ``mandatory`` set, so a topic
  nobody ever served raises :class:`Undeliverable` instead of vanishing.
* ``stackling.fanout.T`` — durable fanout exchange; each fanout subscriber gets its own
  exclusive auto-delete queue bound to it.
* ``stackling.reply.<id>`` — one exclusive reply queue per transport (a per-process queue,
  not direct reply-to: it is re-declared by name after a reconnect, so calls keep working
  across broker restarts; direct reply-to consumers cannot be restored that way).

Publishes use publisher confirms. Two channels: one publishes (confirms on), one consumes
(prefetch = ``max_concurrency``). Deliveries are acknowledged when their handler starts.

Reconnects: ``connect_robust`` reconnects every ``reconnect_interval`` seconds and, on its
channels, re-declares exchanges, queues (the reply queue included) and bindings and
restarts consumers. A publish that fails while the connection is down is retried once the
channel is restored, until the operation's deadline (``call_timeout`` for casts, the call's
timeout for calls); a retry after a lost confirm can duplicate a message. Handlers run in
tasks owned by the transport, so a reconnect never cancels work in progress.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import aio_pika
from aio_pika.abc import (
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustChannel,
    AbstractRobustConnection,
)
from aio_pika.exceptions import CONNECTION_EXCEPTIONS, DeliveryError, PublishError

from stackling.bus.errors import TransportClosed, TransportUnavailable, Undeliverable
from stackling.bus.transport import Handler, Outgoing, Subscription, Transport
from stackling.bus.url import redact_url
from stackling.common.ids import new_id

log = logging.getLogger("stackling.bus.rabbitmq")

_RETRY_PAUSE = 0.25


class _RabbitSubscription(Subscription):
    def __init__(
        self, transport: RabbitTransport, queue: AbstractQueue, tag: str, topic: str, fanout: bool
    ) -> None:
        self.topic = topic
        self.fanout = fanout
        self._transport = transport
        self._queue = queue
        self._tag = tag
        self._cancelled = False

    async def cancel(self) -> None:
        if self._cancelled:
            return
        self._cancelled = True
        # Bounded: with the broker away aio-pika would wait for it forever. The consumer is
        # forgotten locally at once, so a reconnect does not restore it either way.
        conn = self._transport.connection
        online = conn is not None and conn.connected.is_set()
        try:
            async with asyncio.timeout(self._transport._connect_timeout if online else 0.1):
                await self._queue.cancel(self._tag)
                if self.fanout:  # also stops the robust channel from re-declaring it
                    await self._transport._consumer_channel().queue_delete(self._queue.name)
        except TimeoutError:
            if online:
                msg = f"broker did not confirm cancelling {self.topic!r}"
                raise TransportUnavailable(msg) from None
        finally:
            if self in self._transport._subscriptions:
                self._transport._subscriptions.remove(self)


class RabbitTransport(Transport):
    """RabbitMQ transport. See the module docstring and :class:`Transport`."""

    def __init__(
        self,
        url: str,
        *,
        exchange: str = "stackling",
        reconnect_interval: float = 2.0,
        connect_timeout: float = 10.0,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self._url = url
        self._exchange = exchange
        self._reconnect_interval = reconnect_interval
        self._connect_timeout = connect_timeout
        self._reply_queue = f"{exchange}.reply.{new_id()}"
        self._conn: AbstractRobustConnection | None = None
        self._pub: AbstractRobustChannel | None = None
        self._sub: AbstractRobustChannel | None = None
        self._pub_exchanges: dict[str, AbstractExchange] = {}

    @classmethod
    def from_url(cls, url: str, *, call_timeout: float = 60.0) -> RabbitTransport:
        return cls(url, call_timeout=call_timeout)

    def __repr__(self) -> str:
        return f"<RabbitTransport {redact_url(self._url)}>"

    @property
    def reply_address(self) -> str:
        return self._reply_queue

    @property
    def connection(self) -> AbstractRobustConnection | None:
        """The underlying robust connection (for diagnostics and tests)."""
        return self._conn

    def _publish_channel(self) -> AbstractRobustChannel:
        if self._pub is None:
            raise TransportClosed("transport is not running")
        return self._pub

    def _consumer_channel(self) -> AbstractRobustChannel:
        if self._sub is None:
            raise TransportClosed("transport is not running")
        return self._sub

    # -- lifecycle ----------------------------------------------------------------------

    async def _connect(self) -> None:
        kwargs: dict[str, Any] = {}
        if "reconnect_interval" not in parse_qs(urlsplit(self._url).query):
            kwargs["reconnect_interval"] = self._reconnect_interval
        try:
            self._conn = await aio_pika.connect_robust(
                self._url,
                timeout=self._connect_timeout,
                client_properties={"connection_name": f"stackling pid {os.getpid()}"},
                **kwargs,
            )
        except (*CONNECTION_EXCEPTIONS, TimeoutError) as exc:
            raise TransportUnavailable(
                f"cannot connect to {redact_url(self._url)}: {self._safe(exc)}"
            ) from None
        try:
            self._pub = self._conn.channel(publisher_confirms=True, on_return_raises=True)
            await self._pub.initialize()
            self._sub = self._conn.channel()
            await self._sub.initialize()
            await self._sub.set_qos(prefetch_count=self.max_concurrency)
            topic_type = aio_pika.ExchangeType.TOPIC
            await self._sub.declare_exchange(self._exchange, topic_type, durable=True)
            self._pub_exchanges[self._exchange] = await self._pub.declare_exchange(
                self._exchange, topic_type, durable=True
            )
            queue = await self._sub.declare_queue(
                self._reply_queue, exclusive=True, auto_delete=True
            )
            await queue.consume(self._on_reply_delivery, no_ack=True)
        except BaseException:
            await self._conn.close()
            raise
        log.info("bus connected to %s", redact_url(self._url))

    async def _disconnect(self) -> None:
        if self._conn is not None:
            await self._conn.close()
        self._conn = self._pub = self._sub = None
        self._pub_exchanges.clear()

    def _safe(self, exc: BaseException) -> str:
        """``Type: text`` of an exception with the URL's password blanked out."""
        text = f"{type(exc).__name__}: {exc}"
        password = urlsplit(self._url).password
        for secret in {password, unquote(password)} if password else ():
            text = text.replace(secret, "***")
        return text

    # -- primitives ---------------------------------------------------------------------

    def _fanout_exchange(self, topic: str) -> str:
        return f"{self._exchange}.fanout.{topic}"

    async def _exchange_for(self, out: Outgoing) -> AbstractExchange:
        name = self._fanout_exchange(out.topic) if out.fanout else self._exchange
        exchange = self._pub_exchanges.get(name)
        if exchange is None:
            exchange = await self._publish_channel().declare_exchange(
                name, aio_pika.ExchangeType.FANOUT, durable=True
            )
            self._pub_exchanges[name] = exchange
        return exchange

    async def _publish(self, out: Outgoing, deadline: float) -> None:
        message = aio_pika.Message(
            out.body,
            content_type="application/json",
            message_id=out.msg_id,
            correlation_id=out.msg_id,
            reply_to=out.reply_to,
            delivery_mode=(
                aio_pika.DeliveryMode.PERSISTENT
                if out.persistent
                else aio_pika.DeliveryMode.NOT_PERSISTENT
            ),
        )
        try:
            async with asyncio.timeout_at(deadline):
                exchange = await self._exchange_for(out)
        except TimeoutError:
            raise TransportUnavailable("broker unreachable (declaring exchange)") from None
        key = "" if out.fanout else out.topic
        try:
            await self._publish_retrying(
                exchange, message, key, out.mandatory, deadline, out.expires_at
            )
        except PublishError:
            raise Undeliverable(f"no queue exists for topic {out.topic!r}") from None

    async def _send_reply(self, reply_to: str, correlation_id: str, body: bytes) -> None:
        message = aio_pika.Message(
            body, content_type="application/json", correlation_id=correlation_id
        )
        exchange = self._publish_channel().default_exchange
        deadline = asyncio.get_running_loop().time() + self.call_timeout
        await self._publish_retrying(exchange, message, reply_to, False, deadline)

    async def _publish_retrying(
        self,
        exchange: AbstractExchange,
        message: aio_pika.Message,
        routing_key: str,
        mandatory: bool,
        deadline: float,
        expires_at: float | None = None,
    ) -> None:
        loop = asyncio.get_running_loop()
        while True:
            remaining = deadline - loop.time()
            if expires_at is not None:  # the TTL runs from the broker's enqueue: what is left
                message.expiration = max(expires_at - loop.time(), 0.001)
            try:
                await exchange.publish(
                    message, routing_key, mandatory=mandatory, timeout=max(remaining, 0.01)
                )
                return
            except PublishError:
                raise
            except DeliveryError as exc:  # nack: the broker could not take it
                raise TransportUnavailable(f"broker refused the message: {exc}") from None
            except (*CONNECTION_EXCEPTIONS, TimeoutError) as exc:
                if self._closed or loop.time() >= deadline:
                    raise TransportUnavailable(f"broker unreachable: {self._safe(exc)}") from None
                log.info("publish failed (%s); waiting for the broker", type(exc).__name__)
            await asyncio.sleep(_RETRY_PAUSE)
            try:
                async with asyncio.timeout_at(deadline):
                    await self._publish_channel().ready()
            except TimeoutError:
                raise TransportUnavailable("broker did not come back in time") from None

    async def _subscribe(self, topic: str, handler: Handler, fanout: bool) -> Subscription:
        try:
            async with asyncio.timeout(self.call_timeout):
                return await self._declare_and_consume(topic, handler, fanout)
        except TimeoutError:
            raise TransportUnavailable(f"broker unreachable (serving {topic!r})") from None

    async def _declare_and_consume(
        self, topic: str, handler: Handler, fanout: bool
    ) -> Subscription:
        channel = self._consumer_channel()
        queue: AbstractQueue
        if fanout:
            exchange = self._fanout_exchange(topic)
            await channel.declare_exchange(exchange, aio_pika.ExchangeType.FANOUT, durable=True)
            queue = await channel.declare_queue(
                f"{exchange}.{new_id()}", exclusive=True, auto_delete=True
            )
            await queue.bind(exchange)
        else:
            queue = await channel.declare_queue(f"{self._exchange}.{topic}", durable=True)
            await queue.bind(self._exchange, routing_key=topic)

        async def on_delivery(delivery: AbstractIncomingMessage) -> None:
            try:
                await self._dispatcher.accept(handler, delivery.body, ack=delivery.ack)
            except TransportClosed:
                pass  # unacked: requeued by the broker when we disconnect
            except CONNECTION_EXCEPTIONS as exc:  # unacked: the broker redelivers it
                log.info("delivery on %s lost to a reconnect: %s", topic, type(exc).__name__)

        tag = await queue.consume(on_delivery)
        return _RabbitSubscription(self, queue, tag, topic, fanout)

    async def _on_reply_delivery(self, delivery: AbstractIncomingMessage) -> None:
        self._on_reply(delivery.body)
