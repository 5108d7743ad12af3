"""Neutron's error types: the API renders ``{"NeutronError": {"type": <type>, "message":
..., "detail": ""}}`` with the exception's :attr:`type` (Neutron's exception class name)."""

from __future__ import annotations

from stackling.common.errors import BadRequest, Conflict, Forbidden, NotFound


class NeutronNotFound(NotFound):
    def __init__(self, message: str, type_: str = "NotFound") -> None:
        super().__init__(message)
        self.type = type_


class NeutronConflict(Conflict):
    def __init__(self, message: str, type_: str = "Conflict") -> None:
        super().__init__(message)
        self.type = type_


class NeutronBadRequest(BadRequest):
    def __init__(self, message: str, type_: str = "InvalidInput") -> None:
        super().__init__(message)
        self.type = type_


class NeutronForbidden(Forbidden):
    def __init__(self, message: str, type_: str = "PolicyNotAuthorized") -> None:
        super().__init__(message)
        self.type = type_


_KINDS = {"network": "Network", "subnet": "Subnet", "port": "Port",
          "router": "Router", "floatingip": "FloatingIP", "security_group": "SecurityGroup",
          "security_group_rule": "SecurityGroupRule", "agent": "Agent"}


def not_found(kind: str, ident: str) -> NeutronNotFound:
    name = _KINDS.get(kind, kind)
    label = {"security_group": "Security group", "security_group_rule": "Security group rule",
             "floatingip": "Floating IP", "agent": "Agent"}.get(kind, name)
    return NeutronNotFound(f"{label} {ident} could not be found.", f"{name}NotFound")


def invalid(message: str) -> NeutronBadRequest:
    return NeutronBadRequest(f"Invalid input for operation: {message}.")


def bad_attr(attr: str, reason: str) -> NeutronBadRequest:
    return NeutronBadRequest(f"Invalid input for {attr}. Reason: {reason}.", "HTTPBadRequest")


def over_quota(resource: str) -> NeutronConflict:
    return NeutronConflict(f"Quota exceeded for resources: ['{resource}'].", "OverQuota")
