"""Runs a Linux bridge data plane inside the test's "host" namespace (started with
``nsenter --net=<host ns> python3 netdp_runner.py PREFIX DATA_DIR UPSTREAM_PORT [TUNNEL_IP]``).

One JSON request per stdin line, one JSON answer per stdout line:
``{"op": "apply", "state": {...HostState...}}`` -> the report; ``{"op": "refresh"}``;
``{"op": "teardown"}``; ``{"op": "quit"}``. It also runs a metadata upstream on
127.0.0.1:UPSTREAM_PORT (of the host namespace) that answers with the headers it got.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from stackling.network.dataplane import ApplyReport, LinuxBridgeDataplane, LinuxBridgeOptions
from stackling.network.rpcapi import HostState


async def upstream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in head[1:] if ": " in line)
    body = json.dumps({"path": head[0].split(" ")[1], "headers": headers}).encode()
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))
    await writer.drain()
    writer.close()


def as_json(report: ApplyReport) -> dict[str, Any]:
    return {"wired": sorted(report.wired), "pending": sorted(report.pending),
            "failed": report.failed, "errors": report.errors}


async def main() -> None:
    prefix, data_dir, port = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3])
    tunnel_ip = sys.argv[4] if len(sys.argv) > 4 else None
    server = await asyncio.start_server(upstream, "127.0.0.1", port)
    dp = LinuxBridgeDataplane(LinuxBridgeOptions(
        data_dir=data_dir, netns_prefix=prefix, physical_bridges={"public": "br-ex"},
        metadata_url=f"http://127.0.0.1:{port}", metadata_secret="s3cret",
        dhcp_lease_time=600, tunnel_ip=tunnel_ip))
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        request = json.loads(line)
        answer: dict[str, Any] = {}
        if request["op"] == "apply":
            answer = as_json(await dp.apply(HostState.model_validate(request["state"])))
        elif request["op"] == "refresh":
            answer = as_json(await dp.refresh())
        elif request["op"] == "teardown":
            await dp.teardown()
        elif request["op"] == "quit":
            break
        print(json.dumps(answer), flush=True)
    await dp.close()
    server.close()


if __name__ == "__main__":
    asyncio.run(main())
