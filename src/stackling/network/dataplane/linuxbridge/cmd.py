"""Running ``ip``, ``nft``, ``bridge`` and ``sysctl``-like writes as asyncio subprocesses,
optionally inside a named network namespace (``ip netns exec``)."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

log = logging.getLogger("stackling.network.dataplane")


class CommandError(Exception):
    """A command exited non-zero; ``str()`` is a readable one-liner (argv + stderr)."""

    def __init__(self, argv: list[str], returncode: int, stderr: str) -> None:
        self.argv = argv
        self.returncode = returncode
        self.stderr = stderr.strip()
        super().__init__(f"{' '.join(argv)}: exit {returncode}: {self.stderr[:400]}")


async def run(*argv: str, netns: str | None = None, stdin: str | None = None,
              check: bool = True) -> str:
    """Run ``argv`` (in ``netns`` if given) and return its stdout. Raises
    :class:`CommandError` on a non-zero exit when ``check``."""
    full = list(argv) if netns is None else ["ip", "netns", "exec", netns, *argv]
    proc = await asyncio.create_subprocess_exec(
        *full, stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate(stdin.encode() if stdin is not None else None)
    rc = proc.returncode if proc.returncode is not None else -1
    if rc != 0 and check:
        raise CommandError(full, rc, err.decode(errors="replace"))
    log.debug("ran %s -> %s", " ".join(full), rc)
    return out.decode(errors="replace")


async def ip_json(*args: str, netns: str | None = None) -> list[dict[str, Any]]:
    """``ip -json <args>`` parsed (an empty list for empty output)."""
    where = ["-n", netns] if netns else []
    out = await run("ip", "-json", *where, *args)
    out = out.strip()
    return list(json.loads(out)) if out else []


async def links(netns: str | None = None) -> dict[str, dict[str, Any]]:
    """Every link by name with its ``ip -json -details`` record."""
    return {rec["ifname"]: rec for rec in await ip_json("-details", "link", "show", netns=netns)}


async def netns_list() -> set[str]:
    out = await run("ip", "netns", "list", check=False)
    return {line.split()[0] for line in out.splitlines() if line.strip()}


async def nft(script: str, netns: str | None = None) -> None:
    """Load an nft script atomically (one transaction)."""
    await run("nft", "-f", "-", netns=netns, stdin=script)


async def ip(*args: str, netns: str | None = None, check: bool = True) -> str:
    """``ip [-n netns] <args>``."""
    where = ["-n", netns] if netns else []
    return await run("ip", *where, *args, check=check)


async def sysctl(key: str, value: str, netns: str) -> None:
    """Set a sysctl inside ``netns`` (only ever namespaces we own)."""
    await run("sysctl", "-q", "-w", f"{key}={value}", netns=netns)
