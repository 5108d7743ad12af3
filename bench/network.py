#!/usr/bin/env python3
"""Network data plane: time from "a port exists" to "wired and DHCP-ready" on linuxbridge.

    sudo python3 bench/network.py [--ports 10]        # root; ~1 min

Runs the Linux bridge data plane inside private namespaces exactly like
tests/integration/test_network_linuxbridge.py (nothing in the root namespace): one network
with DHCP and the default security group. Per port, one after another:

1. the "hypervisor" creates the VM's tap (a veth into a namespace standing in for the VM);
2. the agent's apply of the new host state (bridge, nft tables, dnsmasq SIGHUP) -> the
   port is reported wired (``apply`` below);
3. the VM runs ``busybox udhcpc`` and gets its lease (``dhcp`` below: includes udhcpc's own
   start-up and its discover/offer/request/ack exchange).

``ready`` = apply + dhcp, the time from the agent learning of the port to the VM holding its
address.

With ``--api`` it also starts ``stackling up --dataplane linuxbridge`` inside a namespace
(as tests/integration/test_network_cloud.py does) and measures through the API:

* ``create``: ``POST /v2.0/ports`` answered (``--api-ports`` sequential creates), and the
  rate with ``--workers`` concurrent clients (anchor: Neutron's published Rally
  create_network ~5/s, create_and_list median 0.48 s);
* ``api_ready``: POST -> the tap plugged -> the port ACTIVE (the agent's PortsWired) ->
  the VM's DHCP lease, for ``--ready-ports`` ports one after another.

Results: bench/results/network-*.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.integration.test_network_cloud import NODE, Cloud, _enter  # noqa: E402
from tests.integration.test_network_linuxbridge import (  # noqa: E402
    EGRESS_ANY,
    HOST,
    Lab,
    dhcp_port,
    group,
    network,
    port,
    rule,
)

from stackling.network.rpcapi import HostState  # noqa: E402


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def stats(values: list[float]) -> dict[str, float]:
    return {"p50": statistics.median(values), "p95": pct(values, 0.95), "max": max(values)}


def bench_api(n_create: int, workers: int, n_ready: int) -> dict[str, Any]:
    cloud = Cloud()
    try:
        cloud.wait_healthy()
        cloud.until(lambda: cloud.api("GET", "/networks?name=private")["networks"],
                    "the bootstrap")
        net = cloud.api("POST", "/networks", {"network": {"name": "bench"}})["network"]
        cloud.api("POST", "/subnets", {"subnet": {"network_id": net["id"], "ip_version": 4,
                                                  "cidr": "10.99.0.0/20"}})
        cloud.until(lambda: f"{cloud.prefix}qdhcp-{net['id']}" in cloud.namespaces(),
                    "DHCP for the bench network")
        body = {"port": {"network_id": net["id"]}}

        def create(client: httpx.Client) -> float:
            t0 = time.perf_counter()
            resp = client.post(f"{cloud.url}/network/v2.0/ports", json=body,
                               headers={"X-Auth-Token": cloud.token})
            assert resp.status_code == 201, resp.text
            return time.perf_counter() - t0

        pool = ThreadPoolExecutor(workers, initializer=_enter,
                                  initargs=(f"/run/netns/{cloud.host}",))
        clients: dict[int, httpx.Client] = {}

        def one(_: int) -> float:
            import threading
            client = clients.setdefault(threading.get_ident(), httpx.Client(timeout=60))
            return create(client)

        sequential = [pool.submit(one, 0).result() for _ in range(n_create)]
        t0 = time.perf_counter()
        concurrent = list(pool.map(one, range(n_create)))
        rate = n_create / (time.perf_counter() - t0)
        ready: list[dict[str, float]] = []
        for i in range(n_ready):
            t0 = time.perf_counter()
            port = cloud.api("POST", "/ports", {"port": {
                **body["port"], "device_owner": "compute:nova", "device_id": str(uuid.uuid4()),
                "binding:host_id": NODE}})["port"]
            t1 = time.perf_counter()
            cloud.vm(f"vm{i}", port)
            cloud.until(lambda port=port: cloud.api(  # type: ignore[misc]
                "GET", f"/ports/{port['id']}")["port"]["status"] == "ACTIVE", "ACTIVE")
            t2 = time.perf_counter()
            assert cloud.dhcp(f"vm{i}") == port["fixed_ips"][0]["ip_address"]
            t3 = time.perf_counter()
            ready.append({"create": t1 - t0, "active": t2 - t0, "ready": t3 - t0})
        for client in clients.values():
            client.close()
        pool.shutdown()
        return {"create_sequential": stats(sequential),
                "create_sequential_rate": n_create / sum(sequential),
                "create_concurrent": stats(concurrent), "create_concurrent_rate": rate,
                "workers": workers,
                "api_ready": {k: stats([r[k] for r in ready]) for k in ready[0]},
                "api_ready_rows": ready}
    finally:
        cloud.close()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ports", type=int, default=10)
    parser.add_argument("--api", action="store_true", help="also measure through the API")
    parser.add_argument("--api-ports", type=int, default=100)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--ready-ports", type=int, default=10)
    args = parser.parse_args()
    lab = Lab()
    rows: list[dict[str, float]] = []
    try:
        net = network(200, "10.20.0.0/22", "10.20.0.1")
        ports = [dhcp_port(net, "10.20.0.2", 2)]
        members: list[str] = []
        for i in range(args.ports):
            ip = f"10.20.0.{10 + i}"
            vm = port(net, ip, 100 + i, groups=["default"])
            members.append(ip)
            ports.append(vm)
            state = HostState(host=HOST, revision=i + 1, networks=[net], ports=list(ports),
                              security_groups=[group("default", EGRESS_ANY, rule(
                                  "ingress", remote_group_id="default"), members=members)])
            lab.vm(f"vm{i}", vm)
            t0 = time.perf_counter()
            report = lab.apply(state)
            t1 = time.perf_counter()
            assert vm.id in report["wired"], report
            lease = lab.dhcp(f"vm{i}")
            t2 = time.perf_counter()
            assert lease["ip"] == ip, lease
            rows.append({"apply": t1 - t0, "dhcp": t2 - t1, "ready": t2 - t0})
    finally:
        lab.close()
    summary = {k: {"p50": statistics.median(r[k] for r in rows),
                   "p95": pct([r[k] for r in rows], 0.95),
                   "max": max(r[k] for r in rows)} for k in ("apply", "dhcp", "ready")}
    result: dict[str, Any] = {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                              "ports": args.ports, "summary": summary, "rows": rows}
    if args.api:
        result["api"] = bench_api(args.api_ports, args.workers, args.ready_ports)
    out = ROOT / "bench" / "results" / f"network-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"{'seconds':10} {'p50':>7} {'p95':>7} {'max':>7}")
    for key, s in summary.items():
        print(f"{key:10} {s['p50']:7.3f} {s['p95']:7.3f} {s['max']:7.3f}")
    if args.api:
        api = result["api"]
        print(f"API port create: sequential p50 {api['create_sequential']['p50'] * 1000:.1f} ms "
              f"({api['create_sequential_rate']:.1f}/s), {api['workers']} workers "
              f"{api['create_concurrent_rate']:.1f}/s")
        for key, s in api["api_ready"].items():
            print(f"api {key:6} {s['p50']:7.3f} {s['p95']:7.3f} {s['max']:7.3f}")
    print(f"-> {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
