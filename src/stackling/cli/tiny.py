"""``stackling image build-tiny``: build the tiny guest (cached), copy it out, register it."""

from __future__ import annotations

import sys
from pathlib import Path

from stackling.common.config import Config
from stackling.image.guest import builder, host
from stackling.image.guest.ensure import connect_admin
from stackling.image.guest.register import RegistrationError, register_tiny_guest


def _say(message: str) -> None:
    print(f"stackling: {message}", flush=True)


async def build_tiny(config: Config, output: Path | None, *, register: bool = False,
                     disk: bool | None = None) -> int:
    try:
        guest = await builder.build_tiny_guest(config.data_dir, disk=disk, say=_say)
    except host.HostMissing as exc:
        print(f"stackling: {exc}", file=sys.stderr)
        return 1
    files = builder.copy_outputs(guest, output) if output is not None else guest.files()
    for path in files:
        print(f"{path}\t{path.stat().st_size}")
    if register:
        try:
            async with await connect_admin(config) as registrar:
                ids = await register_tiny_guest(guest, registrar, _say)
        except (RegistrationError, FileNotFoundError, OSError) as exc:
            print(f"stackling: cannot register the tiny guest: {exc}", file=sys.stderr)
            return 1
        for name, image_id in ids.items():
            print(f"{name}\t{image_id}")
    return 0
