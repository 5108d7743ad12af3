"""``stackling up``'s hook: build (cached) and register the tiny guest when the host can.

The image component starts it as a background task once its API is mounted::

    task = asyncio.create_task(ensure_tiny_image(runtime.config))

It waits for the cloud to answer, never raises and logs what it did or why it did not (a
host without the kernel/busybox packages just gets no tiny image).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import yaml

from stackling.common.config import Config
from stackling.image.guest import builder, host
from stackling.image.guest.register import (
    ImageRegistrar,
    RestRegistrar,
    Say,
    register_tiny_guest,
)

log = logging.getLogger(__name__)

ADMIN_CLOUD = "stackling"


def admin_auth(clouds_yaml: Path, cloud: str = ADMIN_CLOUD) -> tuple[dict[str, Any], str | None]:
    """The ``auth`` section and region of ``cloud`` in the all-in-one's clouds.yaml."""
    try:
        data = yaml.safe_load(clouds_yaml.read_text())
        entry = data["clouds"][cloud]
        return dict(entry["auth"]), entry.get("region_name")
    except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
        raise FileNotFoundError(f"no cloud {cloud!r} in {clouds_yaml}: "
                                "start the cloud with `stackling up` first") from exc


async def connect_admin(config: Config, wait: float = 0.0) -> RestRegistrar:
    auth, region = admin_auth(config.data_dir / "clouds.yaml")
    return await RestRegistrar.connect(auth, region=region, wait=wait)


async def ensure_tiny_image(config: Config, registrar: ImageRegistrar | None = None, *,
                            disk: bool | None = None, wait: float = 120.0,
                            say: Say | None = None) -> dict[str, str] | None:
    """Build the tiny guest (reusing the cache) and register it; returns image name -> id,
    or None when the host lacks a package or anything failed (logged, never raised).
    Without ``registrar`` the admin cloud of DATA_DIR/clouds.yaml is used over REST,
    waiting up to ``wait`` seconds for the cloud to answer."""
    say = say or log.info
    try:
        guest = await builder.build_tiny_guest(config.data_dir, disk=disk, say=say)
    except host.HostMissing as exc:
        say(f"tiny guest image: not built: {exc}")
        return None
    except Exception:
        log.exception("tiny guest image: build failed")
        return None
    try:
        if registrar is not None:
            return await register_tiny_guest(guest, registrar, say)
        async with await connect_admin(config, wait=wait) as rest:
            return await register_tiny_guest(guest, rest, say)
    except Exception as exc:
        log.warning("tiny guest image: not registered: %s", exc)
        return None
