"""Identifiers."""

from __future__ import annotations

import secrets
import uuid


def new_id() -> str:
    """A 32-hex-character id, as Keystone uses."""
    return uuid.uuid4().hex


def new_uuid() -> str:
    """A dashed UUID, as Nova/Neutron/Glance/Cinder use."""
    return str(uuid.uuid4())


def new_request_id() -> str:
    return f"req-{uuid.uuid4()}"


def new_secret(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)
