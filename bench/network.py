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
address. The API's port-create rate (the other half of issue 5's benchmark) needs the
network API and is not measured here yet. Results: bench/results/network-*.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

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


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ports", type=int, default=10)
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
    result = {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "ports": args.ports, "summary": summary, "rows": rows}
    out = ROOT / "bench" / "results" / f"network-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"{'seconds':10} {'p50':>7} {'p95':>7} {'max':>7}")
    for key, s in summary.items():
        print(f"{key:10} {s['p50']:7.3f} {s['p95']:7.3f} {s['max']:7.3f}")
    print(f"-> {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
