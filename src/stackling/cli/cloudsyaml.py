"""The ``clouds.yaml`` the all-in-one cloud writes for its users (mode 0600)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml


def cloud_entry(auth_url: str, region: str, user: str, password: str,
                project: str) -> dict[str, Any]:
    return {
        "auth": {
            "auth_url": auth_url,
            "username": user,
            "password": password,
            "project_name": project,
            "user_domain_name": "Default",
            "project_domain_name": "Default",
        },
        "region_name": region,
        "interface": "public",
        "identity_api_version": 3,
    }


def read_passwords(path: Path) -> dict[str, str] | None:
    """The admin and demo passwords from an existing file, or None."""
    try:
        data = yaml.safe_load(path.read_text())
        clouds = data["clouds"]
        return {"admin": clouds["stackling"]["auth"]["password"],
                "demo": clouds["stackling-demo"]["auth"]["password"]}
    except (OSError, KeyError, TypeError, yaml.YAMLError):
        return None


def write(path: Path, auth_url: str, region: str, passwords: dict[str, str]) -> None:
    data = {"clouds": {
        "stackling": cloud_entry(auth_url, region, "admin", passwords["admin"], "admin"),
        "stackling-demo": cloud_entry(auth_url, region, "demo", passwords["demo"], "demo"),
    }}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        yaml.safe_dump(data, fh, sort_keys=False)
    os.replace(tmp, path)
