"""The message bus: typed, versioned messages over an in-process or RabbitMQ transport.

Pick a transport by URL with :func:`create_transport`; the plugin table is
:data:`TRANSPORTS`. The bus depends only on :mod:`stackling.common`.
"""

from __future__ import annotations

import logging

from stackling.bus.errors import (
    BusError,
    CallTimeout,
    IncompatibleMessage,
    MalformedMessage,
    MessageError,
    RemoteError,
    TransportClosed,
    TransportUnavailable,
    Undeliverable,
    UnexpectedReply,
    UnknownMessage,
)
from stackling.bus.memory import MemoryBroker, MemoryTransport
from stackling.bus.message import (
    Empty,
    Envelope,
    Message,
    MessageRegistry,
    Notification,
    context_from_dict,
    context_to_dict,
    default_registry,
    register,
)
from stackling.bus.rabbitmq import RabbitTransport
from stackling.bus.transport import Handler, Subscription, Transport
from stackling.bus.url import redact_url, url_scheme

log = logging.getLogger("stackling.bus")

#: URL scheme -> transport class. Add a transport here, nowhere else.
TRANSPORTS: dict[str, type[Transport]] = {
    "memory": MemoryTransport,
    "amqp": RabbitTransport,
    "amqps": RabbitTransport,
}


def create_transport(url: str, *, call_timeout: float = 60.0) -> Transport:
    """A transport for ``memory://`` or ``amqp://user:pass@host:port/vhost`` (not started:
    ``await transport.start()``). Each ``memory://`` transport has its own broker."""
    scheme = url_scheme(url)
    try:
        cls = TRANSPORTS[scheme]
    except KeyError:
        raise ValueError(
            f"unknown bus URL scheme {scheme!r} in {redact_url(url)!r} "
            f"(known: {', '.join(sorted(TRANSPORTS))})"
        ) from None
    log.debug("bus transport %s for %s", cls.__name__, redact_url(url))
    return cls.from_url(url, call_timeout=call_timeout)


__all__ = [
    "TRANSPORTS",
    "BusError",
    "CallTimeout",
    "Empty",
    "Envelope",
    "Handler",
    "IncompatibleMessage",
    "MalformedMessage",
    "MemoryBroker",
    "MemoryTransport",
    "Message",
    "MessageError",
    "MessageRegistry",
    "Notification",
    "RabbitTransport",
    "RemoteError",
    "Subscription",
    "Transport",
    "TransportClosed",
    "TransportUnavailable",
    "Undeliverable",
    "UnexpectedReply",
    "UnknownMessage",
    "context_from_dict",
    "context_to_dict",
    "create_transport",
    "default_registry",
    "redact_url",
    "register",
]
