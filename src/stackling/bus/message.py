"""Typed, versioned messages and the JSON envelope that carries them on the wire.

A message is a pydantic model with a class-level ``NAME`` and ``VERSION`` ("major.minor")::

    @register
    class SelectDestinations(Message):
        NAME = "scheduler.select_destinations"
        VERSION = "1.1"
        instance_uuid: str
        flavor_id: str
        hints: dict[str, str] = {}      # added in 1.1: new fields always get a default

Compatibility rules applied by the receiver (:meth:`MessageRegistry.decode`):

* unknown name -> :class:`UnknownMessage`;
* same major, newer minor -> accepted, fields this node does not know are ignored;
* same major, older minor -> accepted, fields the sender did not know take their defaults;
* different major (older or newer) -> :class:`IncompatibleMessage`.

So a minor bump may only add fields with defaults; anything else is a major bump.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any, ClassVar, Final, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from stackling.bus.errors import IncompatibleMessage, MalformedMessage, UnknownMessage
from stackling.common.context import RequestContext
from stackling.common.ids import new_uuid
from stackling.common.timeutils import isotime, utcnow

_VERSION_RE = re.compile(r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$")

M = TypeVar("M", bound="Message")

#: What callers may pass as the request context of a message.
ContextArg = RequestContext | Mapping[str, Any] | None


def parse_version(text: str | None) -> tuple[int, int]:
    """``"1.4"`` -> ``(1, 4)``; anything else is a :class:`MalformedMessage`."""
    match = _VERSION_RE.match(text or "")
    if match is None:
        raise MalformedMessage(f"invalid message version {text!r} (expected 'major.minor')")
    return int(match.group(1)), int(match.group(2))


class Message(BaseModel):
    """Base of every bus message. Subclasses set ``NAME`` and ``VERSION`` and add fields."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    NAME: ClassVar[str] = ""
    VERSION: ClassVar[str] = "1.0"


class Empty(Message):
    """The reply to a call whose handler returned ``None``."""

    NAME = "stackling.empty"
    VERSION = "1.0"


class Notification(Message):
    """An event published with :meth:`Transport.notify` (oslo.messaging notification shape)."""

    NAME = "stackling.notification"
    VERSION = "1.0"

    event_type: str
    priority: str
    payload: dict[str, Any] = Field(default_factory=dict)
    publisher_id: str = ""
    message_id: str = Field(default_factory=new_uuid)
    timestamp: str = Field(default_factory=lambda: isotime(utcnow()))


class RemoteFailure(BaseModel):
    """What a reply says about an exception raised by the remote handler. No traceback."""

    model_config = ConfigDict(extra="ignore")

    type: str
    message: str = ""
    code: int = 500


class Envelope(BaseModel):
    """The JSON document on the wire. Replies carry ``correlation_id`` = the call's ``msg_id``
    and either a message (``name``/``version``/``payload``) or an ``error``."""

    model_config = ConfigDict(extra="ignore")

    name: str | None = None
    version: str | None = None
    payload: dict[str, Any] = Field(default_factory=dict)
    msg_id: str = Field(default_factory=new_uuid)
    reply_to: str | None = None
    correlation_id: str | None = None
    context: dict[str, Any] | None = None
    error: RemoteFailure | None = None
    sent_at: str = Field(default_factory=lambda: isotime(utcnow()))

    # Every message crosses these two on each hop. The payload is a message's JSON-mode
    # dump (plain JSON values), so orjson writes and reads it; pydantic validates the small
    # header, and the payload once, as its message class (MessageRegistry.decode).
    def to_bytes(self) -> bytes:
        doc: dict[str, Any] = {}
        for key in _HEADER:
            value = getattr(self, key)
            if value is not None:
                doc[key] = value
        doc["payload"] = self.payload
        if self.error is not None:
            doc["error"] = self.error.model_dump()
        try:
            return orjson.dumps(doc)
        except TypeError:  # what orjson cannot write (an integer beyond 64 bits)
            return self.model_dump_json(exclude_none=True).encode()

    @classmethod
    def from_bytes(cls, body: bytes) -> Envelope:
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise MalformedMessage("invalid envelope: not a JSON document") from None
        if not isinstance(doc, dict):
            raise MalformedMessage("invalid envelope: not a JSON object")
        payload = doc.pop("payload", {})
        if not isinstance(payload, dict):
            raise MalformedMessage("invalid envelope: payload: Input should be a valid "
                                   "dictionary")
        try:
            env = cls.model_validate(doc)
        except ValidationError as exc:
            raise MalformedMessage(f"invalid envelope: {_summary(exc)}") from None
        env.payload = payload
        return env


_HEADER: Final = ("name", "version", "msg_id", "reply_to", "correlation_id", "context",
                  "sent_at")


def _summary(exc: ValidationError) -> str:
    """Field locations and reasons only: input values may be secrets (adminPass...)."""
    parts = []
    for err in exc.errors(include_input=False, include_url=False)[:5]:
        loc = ".".join(str(p) for p in err["loc"]) or "<root>"
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


_CONTEXT_FIELDS: Final = tuple(f.name for f in dataclasses.fields(RequestContext))


def context_to_dict(ctx: ContextArg) -> dict[str, Any] | None:
    """Serialize a request context for the wire. The token is never sent over the bus."""
    if ctx is None:
        return None
    if isinstance(ctx, RequestContext):
        # a shallow copy (dataclasses.asdict deep-copies every value: measurable on every
        # cast); what it holds is encoded to JSON before anything could change it
        data = {name: getattr(ctx, name) for name in _CONTEXT_FIELDS}
    else:
        data = dict(ctx)
    data.pop("token", None)
    return data


def context_from_dict(data: Mapping[str, Any] | None) -> RequestContext:
    """Rebuild a :class:`RequestContext` from :func:`context_to_dict` output (unknown keys
    from newer senders are dropped, JSON lists become tuples)."""
    if not data:
        return RequestContext()
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(RequestContext):
        if f.name == "token" or f.name not in data:
            continue
        value = data[f.name]
        if isinstance(f.default, tuple) and isinstance(value, list):
            value = tuple(value)
        kwargs[f.name] = value
    return RequestContext(**kwargs)


class MessageRegistry:
    """Maps message names to the class (and so the version) this node understands."""

    def __init__(self, *, builtins: bool = True) -> None:
        self._classes: dict[str, type[Message]] = {}
        if builtins:
            self.register(Empty)
            self.register(Notification)

    def register(self, cls: type[M]) -> type[M]:
        """Register ``cls`` (usable as a class decorator). Registering a different class
        under a name already taken is a programming error."""
        if not cls.NAME:
            raise ValueError(f"{cls.__qualname__} has no NAME")
        parse_version(cls.VERSION)
        existing = self._classes.get(cls.NAME)
        if existing is not None and existing is not cls:
            raise ValueError(f"message name {cls.NAME!r} already registered by {existing!r}")
        self._classes[cls.NAME] = cls
        return cls

    def lookup(self, name: str) -> type[Message]:
        try:
            return self._classes[name]
        except KeyError:
            raise UnknownMessage(f"unknown message {name!r}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._classes

    def wrap(
        self,
        message: Message,
        *,
        context: ContextArg = None,
        reply_to: str | None = None,
        correlation_id: str | None = None,
    ) -> Envelope:
        """Put ``message`` in an envelope (does not require it to be registered here)."""
        cls = type(message)
        if not cls.NAME:
            raise ValueError(f"{cls.__qualname__} has no NAME")
        # (constructed without validation: every field is ours and of the right type)
        return Envelope.model_construct(
            name=cls.NAME,
            version=cls.VERSION,
            payload=message.model_dump(mode="json"),
            msg_id=new_uuid(),
            reply_to=reply_to,
            correlation_id=correlation_id,
            context=context_to_dict(context),
            error=None,
            sent_at=isotime(utcnow()),
        )

    def decode(self, envelope: Envelope) -> Message:
        """Turn an envelope back into a message, applying the compatibility rules above."""
        if envelope.name is None:
            raise MalformedMessage("envelope carries no message name")
        cls = self.lookup(envelope.name)
        theirs = parse_version(envelope.version)
        ours = parse_version(cls.VERSION)
        if theirs[0] != ours[0]:
            raise IncompatibleMessage(
                f"message {envelope.name!r} version {envelope.version} is incompatible with "
                f"version {cls.VERSION} understood here (major versions differ)"
            )
        try:
            return cls.model_validate(envelope.payload)
        except ValidationError as exc:
            raise MalformedMessage(
                f"message {envelope.name!r} version {envelope.version}: {_summary(exc)}"
            ) from None


#: The process-wide default registry; transports use it unless given their own.
default_registry = MessageRegistry()


def register(cls: type[M]) -> type[M]:
    """Class decorator registering a message in :data:`default_registry`."""
    return default_registry.register(cls)
