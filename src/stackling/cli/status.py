"""``stackling status``: ask the running cloud how each service is."""

from __future__ import annotations

import json
import sys

import httpx

from stackling.common.config import Config


async def run_status(config: Config) -> int:
    runfile = config.data_dir / "run.json"
    try:
        url = json.loads(runfile.read_text())["url"]
    except (OSError, ValueError, KeyError):
        print(f"stackling is not running (no {runfile})", file=sys.stderr)
        return 1
    try:
        async with httpx.AsyncClient(timeout=5.0) as client:
            response = await client.get(f"{url}/healthz")
            report = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        print(f"stackling at {url} does not answer: {type(exc).__name__}", file=sys.stderr)
        return 1
    print(f"stackling at {url}: {report.get('status')}")
    for name, state in sorted(report.get("services", {}).items()):
        print(f"  {name:<14} {state}")
    return 0 if report.get("status") == "ok" else 1
