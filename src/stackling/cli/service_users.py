"""Passwords of the cloud's own service users (``DATA_DIR/service-users.yaml``, mode 0600)."""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from stackling.common.ids import new_secret


def load_or_create(path: Path, users: list[str]) -> tuple[dict[str, str], list[str]]:
    """The password of each user, generating missing ones. Returns (passwords, new users)."""
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError):
        data = {}
    passwords = {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)}
    created = [u for u in users if u not in passwords]
    if created:
        for user in created:
            passwords[user] = new_secret(24)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            yaml.safe_dump(passwords, fh)
        os.replace(tmp, path)
    return passwords, created
