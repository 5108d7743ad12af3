"""The consumer side of every transport: runs handlers for deliveries and sends replies.

Handlers run in tasks owned by the dispatcher, not by the broker client, so a reconnect
never cancels work in progress; at most ``max_concurrency`` run at once. A delivery that
cannot be decoded, or whose handler raises, becomes an error reply for a call and a log
line for a cast: the consumer loop never dies of it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from stackling.bus.errors import MalformedMessage, MessageError, TransportClosed
from stackling.bus.message import Empty, Envelope, Message, MessageRegistry, RemoteFailure
from stackling.common.errors import StacklingError

log = logging.getLogger("stackling.bus")

#: ``handler(message, context) -> reply`` (the reply is ignored for casts and fanouts).
Handler = Callable[[Message, dict[str, Any]], Awaitable[Message | None]]
#: ``send_reply(reply_to, correlation_id, body)``, supplied by the transport.
SendReply = Callable[[str, str, bytes], Awaitable[None]]

_MAX_ERROR_TEXT = 1000


def remote_failure(exc: BaseException) -> RemoteFailure:
    """What a caller may learn about an exception: class name, message, HTTP code."""
    text = exc.message if isinstance(exc, StacklingError) else str(exc)
    code = exc.code if isinstance(exc, StacklingError) else 500
    return RemoteFailure(type=type(exc).__name__, message=text[:_MAX_ERROR_TEXT], code=code)


class Dispatcher:
    def __init__(
        self, registry: MessageRegistry, send_reply: SendReply, max_concurrency: int
    ) -> None:
        self.registry = registry
        self._send_reply = send_reply
        self._slots = asyncio.Semaphore(max_concurrency)
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    async def accept(
        self, handler: Handler, body: bytes, ack: Callable[[], Awaitable[None]] | None = None
    ) -> None:
        """Wait for a free handler slot, acknowledge the delivery, start the handler.
        Raises TransportClosed (before acknowledging) once :meth:`drain` has begun."""
        await self._slots.acquire()
        try:
            if self._closed:
                raise TransportClosed("transport closed")
            if ack is not None:
                await ack()
        except BaseException:
            self._slots.release()
            raise
        task = asyncio.create_task(self._dispatch(handler, body))
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    async def drain(self, grace: float) -> None:
        """Refuse new deliveries, wait up to ``grace`` seconds for running handlers, then
        cancel the rest."""
        self._closed = True
        if not self._tasks:
            return
        _, running = await asyncio.wait(set(self._tasks), timeout=grace)
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._slots.release()

    async def _dispatch(self, handler: Handler, body: bytes) -> None:
        try:
            env = Envelope.from_bytes(body)
        except MalformedMessage as exc:
            log.warning("dropping undecodable message: %s", exc)
            return
        try:
            message = self.registry.decode(env)
        except MessageError as exc:
            log.warning("cannot decode message %s (msg_id %s): %s", env.name, env.msg_id, exc)
            await self._reply(env, Envelope(error=remote_failure(exc)))
            return
        reply: Envelope | None = None
        try:
            result = await handler(message, dict(env.context or {}))
            if result is not None and not isinstance(result, Message):
                raise TypeError(f"handler returned {type(result).__name__}, not a Message")
            if env.reply_to:
                reply = self.registry.wrap(result if result is not None else Empty())
        except Exception as exc:
            log.error(
                "handler for %s (msg_id %s) failed: %s",
                env.name,
                env.msg_id,
                type(exc).__name__,
                exc_info=True,
            )
            reply = Envelope(error=remote_failure(exc))
        await self._reply(env, reply)

    async def _reply(self, request: Envelope, reply: Envelope | None) -> None:
        if not request.reply_to or reply is None:
            return
        reply.correlation_id = request.msg_id
        try:
            await self._send_reply(request.reply_to, request.msg_id, reply.to_bytes())
        except Exception as exc:
            log.warning("could not send the reply to %s: %r", request.msg_id, exc)
