"""Errors the bus raises to its callers.

Every bus error is a :class:`~stackling.common.errors.StacklingError`, so an API layer that
renders StacklingErrors renders these too (a remote ``NotFound`` keeps its 404 through
:class:`RemoteError`). Messages never contain payloads, URLs with passwords or tracebacks.
"""

from __future__ import annotations

from stackling.common.errors import StacklingError


class BusError(StacklingError):
    """Base class of everything the bus raises."""


class TransportClosed(BusError):
    """The transport was not started, or was closed while the operation waited."""

    code = 503
    title = "Service Unavailable"


class TransportUnavailable(BusError):
    """The broker could not be reached (at start, or for longer than the operation allows)."""

    code = 503
    title = "Service Unavailable"


class Undeliverable(BusError):
    """No queue exists for the topic: nobody ever served it, so the message would be lost."""

    code = 503
    title = "Service Unavailable"


class CallTimeout(BusError):
    """No reply arrived within the call timeout. The remote side may still act on the call."""

    code = 504
    title = "Gateway Timeout"

    def __init__(self, topic: str, name: str, timeout: float) -> None:
        self.topic = topic
        self.name = name
        self.timeout = timeout
        super().__init__(f"call {name!r} on topic {topic!r} timed out after {timeout:g}s")


class MessageError(BusError):
    """A message could not be decoded. ``remote`` is True when the peer reported it."""

    code = 400
    title = "Bad Request"

    def __init__(self, message: str, *, remote: bool = False) -> None:
        self.remote = remote
        super().__init__(message)


class UnknownMessage(MessageError):
    """The message name is not registered on the receiving side."""


class IncompatibleMessage(MessageError):
    """The message's major version differs from the receiver's: it cannot be understood."""


class MalformedMessage(MessageError):
    """The envelope or payload does not validate (bad JSON, missing required field...)."""


class UnexpectedReply(BusError):
    """A call got a reply of another type than the caller asked for."""


class RemoteError(BusError):
    """The remote handler raised. Carries only its class name, message and HTTP code."""

    def __init__(self, exc_type: str, message: str, code: int = 500) -> None:
        self.exc_type = exc_type
        self.remote_message = message
        super().__init__(f"{exc_type}: {message}" if message else exc_type)
        self.code = code


#: Decoding errors travel back to callers under these names and are re-raised as themselves.
MESSAGE_ERRORS: dict[str, type[MessageError]] = {
    cls.__name__: cls for cls in (UnknownMessage, IncompatibleMessage, MalformedMessage)
}
