"""Messages, envelopes, the registry's compatibility rules and context serialization."""

from __future__ import annotations

import json

import pytest

from stackling.bus import (
    Envelope,
    IncompatibleMessage,
    MalformedMessage,
    Message,
    MessageRegistry,
    UnknownMessage,
    context_from_dict,
    context_to_dict,
)
from stackling.bus.message import parse_version
from stackling.common.context import RequestContext


class Boot(Message):
    NAME = "compute.boot"
    VERSION = "1.3"
    instance_uuid: str
    admin_pass: str = ""


def wire(name: str, version: str, payload: dict[str, object]) -> Envelope:
    """An envelope as a peer would send it, round-tripped through JSON."""
    env = Envelope(name=name, version=version, payload=payload)
    return Envelope.from_bytes(env.to_bytes())


@pytest.fixture
def reg() -> MessageRegistry:
    reg = MessageRegistry()
    reg.register(Boot)
    return reg


def test_round_trip(reg: MessageRegistry) -> None:
    env = reg.wrap(Boot(instance_uuid="i-1"), reply_to="r", correlation_id="c")
    decoded = Envelope.from_bytes(env.to_bytes())
    assert (decoded.name, decoded.version, decoded.reply_to) == ("compute.boot", "1.3", "r")
    assert reg.decode(decoded) == Boot(instance_uuid="i-1")


@pytest.mark.parametrize("version", ["1.0", "1.3", "1.9", "1.12"])
def test_same_major_is_accepted(reg: MessageRegistry, version: str) -> None:
    msg = reg.decode(wire("compute.boot", version, {"instance_uuid": "i", "future": 1}))
    assert msg == Boot(instance_uuid="i")


@pytest.mark.parametrize("version", ["0.9", "2.0", "10.1"])
def test_other_major_is_incompatible(reg: MessageRegistry, version: str) -> None:
    with pytest.raises(IncompatibleMessage, match="major versions differ"):
        reg.decode(wire("compute.boot", version, {"instance_uuid": "i"}))


def test_unknown_name(reg: MessageRegistry) -> None:
    with pytest.raises(UnknownMessage, match=r"compute\.reboot"):
        reg.decode(wire("compute.reboot", "1.0", {}))


@pytest.mark.parametrize("version", ["1", "1.x", "", "01.0", "1.0.0"])
def test_bad_version_is_malformed(reg: MessageRegistry, version: str) -> None:
    with pytest.raises(MalformedMessage):
        reg.decode(wire("compute.boot", version, {"instance_uuid": "i"}))


def test_validation_errors_never_echo_values(reg: MessageRegistry) -> None:
    with pytest.raises(MalformedMessage) as err:
        reg.decode(wire("compute.boot", "1.3", {"instance_uuid": 5, "admin_pass": ["s3cr3t"]}))
    assert "s3cr3t" not in str(err.value)
    assert "instance_uuid" in str(err.value) and "admin_pass" in str(err.value)


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"payload": 3}'])
def test_garbage_envelope(body: bytes) -> None:
    with pytest.raises(MalformedMessage):
        Envelope.from_bytes(body)


def test_envelope_ignores_unknown_keys() -> None:
    env = Envelope.from_bytes(b'{"name": "a", "version": "1.0", "hop_count": 3}')
    assert env.name == "a" and env.payload == {}


def test_registry_rules() -> None:
    reg = MessageRegistry()
    assert reg.register(Boot) is Boot
    reg.register(Boot)  # idempotent

    class OtherBoot(Message):
        NAME = "compute.boot"

    with pytest.raises(ValueError, match="already registered"):
        reg.register(OtherBoot)

    class Nameless(Message):
        pass

    with pytest.raises(ValueError, match="no NAME"):
        reg.register(Nameless)
    with pytest.raises(ValueError, match="no NAME"):
        reg.wrap(Nameless())

    class BadVersion(Message):
        NAME = "x"
        VERSION = "v1"

    with pytest.raises(MalformedMessage):
        reg.register(BadVersion)
    assert "stackling.empty" in reg and "stackling.notification" in reg
    assert "stackling.empty" not in MessageRegistry(builtins=False)


def test_parse_version() -> None:
    assert parse_version("1.0") == (1, 0)
    assert parse_version("3.14") == (3, 14)


def test_messages_are_immutable() -> None:
    msg = Boot(instance_uuid="i")
    with pytest.raises(ValueError):
        msg.instance_uuid = "j"  # type: ignore[misc]


def test_context_round_trip_drops_the_token() -> None:
    ctx = RequestContext(
        request_id="req-1",
        user_id="u",
        project_id="p",
        roles=("member", "reader"),
        token="gAAAAAsecret",
        is_service=True,
    )
    data = context_to_dict(ctx)
    assert data is not None and "token" not in data
    back = context_from_dict(data | {"added_in_a_later_release": 1})
    assert back.roles == ("member", "reader") and back.is_service and back.token is None
    assert back == RequestContext(**{**data, "roles": ("member", "reader")})
    assert context_to_dict(None) is None
    assert context_to_dict({"user_id": "u", "token": "t"}) == {"user_id": "u"}
    assert context_from_dict(None) == RequestContext()


def test_the_wire_form_round_trips_and_leaves_out_empty_header_fields(
        reg: MessageRegistry) -> None:
    ctx = RequestContext(request_id="req-1", user_id="u", roles=("member", "reader"))
    env = reg.wrap(Boot(instance_uuid="i1", admin_pass=""), context=ctx, reply_to="r.1")
    body = env.to_bytes()
    doc = json.loads(body)
    assert set(doc) == {"name", "version", "payload", "msg_id", "reply_to", "context",
                        "sent_at"}  # no correlation_id, no error: they are None
    assert doc["payload"] == {"instance_uuid": "i1", "admin_pass": ""}
    back = Envelope.from_bytes(body)
    assert json.loads(back.to_bytes()) == doc
    assert back.msg_id == env.msg_id and back.reply_to == "r.1"
    assert reg.decode(back) == Boot(instance_uuid="i1")
    assert context_from_dict(back.context).roles == ("member", "reader")


def test_what_orjson_cannot_write_still_goes_out() -> None:
    env = Envelope(name="x", version="1.0", payload={"big": 2**70, "none": None})
    back = Envelope.from_bytes(env.to_bytes())
    assert back.payload == {"big": 2**70, "none": None}
    reply = Envelope(error={"type": "NotFound", "message": "gone", "code": 404},
                     correlation_id="c1")
    back = Envelope.from_bytes(reply.to_bytes())
    assert back.error is not None and back.error.code == 404 and back.payload == {}
