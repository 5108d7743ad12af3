"""The Linux bridge data plane: bridges, VXLAN, taps, dnsmasq, routers and nftables.

One reconcile (:meth:`LinuxBridgeDataplane.apply`) walks the desired state in this order:

1. L2: a bridge ``brq<network id>`` per network (flat networks ride on the configured host
   bridge, which is never created or deleted here), a ``vxlan-<VNI>`` device in it when a
   tunnel IP is configured, with one all-zero FDB entry per peer (unicast flooding, no
   multicast group);
2. DHCP (role ``dhcp``): namespace ``qdhcp-<network id>``, the DHCP port as a veth
   (``tap...`` in the bridge, ``ns-...`` inside) with the metadata address, dnsmasq, and the
   metadata listener;
3. L3 (role ``l3``): namespace ``qrouter-<router id>``, ``qr-``/``qg-`` veths, routes, NAT;
4. ports (role ``l2``): the security group tables first (they match by interface *name*, so
   a tap is filtered from the moment it is plugged), then each VM tap into its bridge;
5. what is ours and no longer wanted: namespaces with our prefixes (their veths go with
   them), dnsmasq processes and their directories, ``brq*`` bridges, ``vxlan-*`` devices;
   VM taps are only detached (the hypervisor owns them).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import shutil
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stackling.network.dataplane.base import ApplyReport, Dataplane, is_compute_port
from stackling.network.dataplane.linuxbridge import cmd, firewall
from stackling.network.dataplane.linuxbridge.dhcp import (
    METADATA_IP,
    DnsmasqProcess,
    dhcp_subnets,
    dnsmasq_argv,
    render_hosts,
    render_opts,
)
from stackling.network.dataplane.linuxbridge.metadata import Instance, MetadataProxy
from stackling.network.dataplane.linuxbridge.names import (
    BRIDGE_PREFIX,
    DHCP_IF_PREFIX,
    GATEWAY_IF_PREFIX,
    ROUTER_IF_PREFIX,
    TAP_PREFIX,
    VXLAN_PREFIX,
    bridge_name,
    dhcp_if,
    dhcp_ns,
    gateway_if,
    router_if,
    router_ns,
    tap_name,
    vxlan_name,
)
from stackling.network.dataplane.linuxbridge.router import ra_argv, render_nat
from stackling.network.rpcapi import ROLES, HostState, NetworkState, PortState, RouterState

log = logging.getLogger("stackling.network.dataplane")

ZERO_MAC = "00:00:00:00:00:00"
BR_NF_SYSCTL = Path("/proc/sys/net/bridge/bridge-nf-call-iptables")


@dataclass
class LinuxBridgeOptions:
    """``data_dir``: dnsmasq files (per network). ``netns_prefix``: put before ``qdhcp-`` /
    ``qrouter-`` (tests use their own so they never meet a real agent's namespaces).
    ``physical_bridges``: physical network name -> existing host bridge (flat networks).
    ``metadata_url``: the compute metadata service; ``metadata_secret`` signs instance ids."""

    data_dir: Path
    netns_prefix: str = ""
    tunnel_ip: str | None = None
    physical_bridges: dict[str, str] = field(default_factory=dict)
    roles: tuple[str, ...] = ROLES
    metadata_url: str | None = None
    metadata_secret: str = ""
    dhcp_lease_time: int = 86400
    vxlan_port: int = 4789


def _br_netfilter_off() -> bool:
    try:
        return BR_NF_SYSCTL.read_text().strip() != "1"
    except OSError:
        return False


def _is_up(rec: dict[str, Any]) -> bool:
    return "UP" in rec.get("flags", [])


def _kind(rec: dict[str, Any]) -> str:
    return str(rec.get("linkinfo", {}).get("info_kind", ""))


def _prefixlen(network: NetworkState, subnet_id: str) -> int | None:
    for subnet in network.subnets:
        if subnet.id == subnet_id:
            return ipaddress.ip_network(subnet.cidr, strict=False).prefixlen
    return None


class LinuxBridgeDataplane(Dataplane):
    name = "linuxbridge"

    def __init__(self, options: LinuxBridgeOptions) -> None:
        self.options = options
        self._state: HostState | None = None
        self._bridges: dict[str, str] = {}  # network id -> bridge
        self._instances: dict[tuple[str, str], Instance] = {}  # (network, ip) -> instance
        self._errors: list[str] = []
        self._wanted_ns: set[str] = set()
        self._lock = asyncio.Lock()
        self.metadata = MetadataProxy(self._lookup, options.metadata_url,
                                      options.metadata_secret)

    @property
    def last_state(self) -> HostState | None:
        return self._state

    def _lookup(self, network_id: str, ip: str) -> Instance | None:
        return self._instances.get((network_id, ip))

    def _ns_dhcp(self, network_id: str) -> str:
        return dhcp_ns(self.options.netns_prefix, network_id)

    def _ns_router(self, router_id: str) -> str:
        return router_ns(self.options.netns_prefix, router_id)

    def _dhcp_dir(self, network_id: str) -> Path:
        return self.options.data_dir / "dhcp" / network_id

    def _ra_dir(self, router_id: str) -> Path:
        return self.options.data_dir / "ra" / router_id

    # -- the reconcile ------------------------------------------------------------------
    async def apply(self, state: HostState) -> ApplyReport:
        async with self._lock:
            self._state = state
            self._instances = {
                (p.network_id, f.ip_address): Instance(p.device_id, p.project_id)
                for p in state.ports if is_compute_port(p.device_owner) for f in p.fixed_ips}
            report = ApplyReport(revision=state.revision)
            links = await cmd.links()
            self._bridges = await self._ensure_l2(state, links, report)
            keep: set[str] = set()  # bridge-side veth ends of our namespaces
            self._wanted_ns = set()  # filled by _ensure_dhcp / _ensure_routers
            if "dhcp" in self.options.roles:
                keep |= await self._ensure_dhcp(state, report)
            if "l3" in self.options.roles:
                keep |= await self._ensure_routers(state, report)
            await self._remove_stale_namespaces()
            if "l2" in self.options.roles:
                await self._ensure_firewall(state, report)
                await self._plug_ports(state, report, keep, unplug_stale=True)
            await self._remove_stale_l2(set(self._bridges.values()))
            self._errors = list(report.errors)
            for error in report.errors:
                log.warning("%s", error)
            return report

    async def refresh(self) -> ApplyReport:
        async with self._lock:
            state = self._state
            report = ApplyReport(revision=state.revision if state else 0,
                                 errors=list(self._errors))
            if state is not None and "l2" in self.options.roles:
                await self._plug_ports(state, report, set(), unplug_stale=False)
            return report

    # -- L2 -----------------------------------------------------------------------------
    async def _ensure_l2(self, state: HostState, links: dict[str, dict[str, Any]],
                         report: ApplyReport) -> dict[str, str]:
        bridges: dict[str, str] = {}
        for net in state.networks:
            try:
                if net.network_type == "flat":
                    phys = self.options.physical_bridges.get(net.physical_network or "")
                    if phys is None or phys not in links:
                        report.errors.append(
                            f"network {net.id}: no host bridge for physical network "
                            f"{net.physical_network!r} (configure physical_bridges)")
                        continue
                    bridges[net.id] = phys
                    continue
                br = bridge_name(net.id)
                if br not in links:
                    await cmd.ip("link", "add", br, "type", "bridge")
                    links[br] = {"flags": []}
                if not _is_up(links[br]):
                    await cmd.ip("link", "set", br, "up")
                if net.network_type == "vxlan" and net.segmentation_id and self.options.tunnel_ip:
                    await self._ensure_vxlan(net, br, links, state.tunnel_peers)
                bridges[net.id] = br
            except cmd.CommandError as exc:
                report.errors.append(f"network {net.id}: {exc}")
        return bridges

    async def _ensure_vxlan(self, net: NetworkState, br: str, links: dict[str, dict[str, Any]],
                            peers: dict[str, str]) -> None:
        assert net.segmentation_id is not None
        name = vxlan_name(net.segmentation_id)
        rec = links.get(name)
        data = rec.get("linkinfo", {}).get("info_data", {}) if rec else {}
        if rec is not None and (data.get("id") != net.segmentation_id
                                or data.get("local") != self.options.tunnel_ip):
            await cmd.ip("link", "del", name)
            rec = None
        if rec is None:
            await cmd.ip("link", "add", name, "type", "vxlan", "id", str(net.segmentation_id),
                          "local", str(self.options.tunnel_ip),
                          "dstport", str(self.options.vxlan_port), "nolearning")
            rec = {"flags": []}
        if rec.get("master") != br:
            await cmd.ip("link", "set", name, "master", br)
        if rec.get("mtu") != net.mtu:
            await cmd.ip("link", "set", name, "mtu", str(net.mtu))
        if not _is_up(rec):
            await cmd.ip("link", "set", name, "up")
        wanted = {ip for host, ip in peers.items() if ip != self.options.tunnel_ip}
        out = await cmd.run("bridge", "-json", "fdb", "show", "dev", name)
        have = {e.get("dst") for e in (json.loads(out) if out.strip() else [])
                if e.get("mac") == ZERO_MAC}
        for dst in sorted(wanted - have):
            await cmd.run("bridge", "fdb", "append", ZERO_MAC, "dev", name, "dst", dst)
        for dst in sorted(d for d in have - wanted if d):
            await cmd.run("bridge", "fdb", "del", ZERO_MAC, "dev", name, "dst", dst)

    async def _remove_stale_l2(self, wanted_bridges: set[str]) -> None:
        links = await cmd.links()
        wanted_vxlan = {name for name, rec in links.items()
                        if rec.get("master") in wanted_bridges}
        for name, rec in links.items():
            try:
                if (name.startswith(VXLAN_PREFIX) and _kind(rec) == "vxlan"
                        and name not in wanted_vxlan):
                    await cmd.ip("link", "del", name)
                elif (name.startswith(BRIDGE_PREFIX) and _kind(rec) == "bridge"
                      and name not in wanted_bridges):
                    await cmd.ip("link", "del", name)
            except cmd.CommandError as exc:
                log.warning("removing stale %s: %s", name, exc)

    # -- ports and security groups ------------------------------------------------------
    def _host_ports(self, state: HostState) -> list[PortState]:
        return [p for p in state.ports
                if is_compute_port(p.device_owner) and p.host == state.host]

    async def _ensure_firewall(self, state: HostState, report: ApplyReport) -> None:
        ports = self._host_ports(state)
        devices = {p.id: p.tap_name for p in ports}
        try:
            if ports and _br_netfilter_off():
                raise cmd.CommandError(["sysctl"], 1, "security groups on bridges need "
                                       "net.bridge.bridge-nf-call-iptables=1")
            # only our own bridges: a host bridge (br-ex) carries the host's own traffic,
            # whose output-side conntrack entries live in the default zone
            zones = {br: firewall.conntrack_zone(net.id, net.segmentation_id)
                     for net in state.networks
                     if (br := self._bridges.get(net.id)) and br.startswith(BRIDGE_PREFIX)}
            script = firewall.render(firewall.firewalled_ports(ports, devices),
                                     state.security_groups, zones)
            await cmd.nft(script)
        except (cmd.CommandError, ValueError) as exc:
            for port in ports:
                report.failed[port.id] = f"security group rules not applied: {exc}"

    async def _plug_ports(self, state: HostState, report: ApplyReport, keep: set[str],
                          unplug_stale: bool) -> None:
        links = await cmd.links()
        wanted = set(keep)
        mtus = {n.id: n.mtu for n in state.networks}
        for port in self._host_ports(state):
            tap = port.tap_name
            wanted.add(tap)
            if port.id in report.failed:
                continue
            br = self._bridges.get(port.network_id)
            if br is None:
                report.failed[port.id] = f"network {port.network_id} is not set up on this host"
                continue
            rec = links.get(tap)
            if rec is None:
                report.pending.add(port.id)
                continue
            try:
                if rec.get("master") != br:
                    await cmd.ip("link", "set", tap, "master", br)
                mtu = mtus.get(port.network_id)
                if mtu and rec.get("mtu") != mtu:  # the overlay's, not the tap's 1500
                    await cmd.ip("link", "set", tap, "mtu", str(mtu))
                if not port.admin_state_up:
                    if _is_up(rec):
                        await cmd.ip("link", "set", tap, "down")
                    continue
                if not _is_up(rec):
                    await cmd.ip("link", "set", tap, "up")
                report.wired.add(port.id)
            except cmd.CommandError as exc:
                if tap not in await cmd.links():
                    report.pending.add(port.id)  # it went away under us: wait for it again
                else:
                    report.failed[port.id] = f"plugging {tap} failed: {exc}"
        if not unplug_stale:
            return
        ours = set(self._bridges.values())
        for name, rec in links.items():
            if (name.startswith(TAP_PREFIX) and rec.get("master") in ours
                    and name not in wanted):
                with contextlib.suppress(cmd.CommandError):
                    await cmd.ip("link", "set", name, "nomaster")

    # -- namespaces and veths -----------------------------------------------------------
    async def _ensure_ns(self, ns: str, existing: set[str]) -> None:
        if ns not in existing:
            await cmd.run("ip", "netns", "add", ns)
            existing.add(ns)
            await cmd.ip("link", "set", "lo", "up", netns=ns)

    async def _ensure_veth(self, ns: str, port_id: str, mac: str, inner: str, bridge: str,
                           addresses: Iterable[str], mtu: int) -> str:
        """The veth of one port: ``tap...`` in ``bridge``, ``inner`` in ``ns`` with ``mac``
        and exactly ``addresses`` (CIDR notation). Returns the bridge-side name."""
        outer = tap_name(port_id)
        inner_links = await cmd.links(ns)
        root_links = await cmd.links()
        if inner not in inner_links:
            if outer in root_links:
                await cmd.ip("link", "del", outer)
            await cmd.ip("link", "add", outer, "mtu", str(mtu), "type", "veth", "peer", "name",
                          inner, "mtu", str(mtu), "address", mac, "netns", ns)
            root_links[outer] = {"flags": []}
        rec = root_links.get(outer, {})
        if rec.get("master") != bridge:
            await cmd.ip("link", "set", outer, "master", bridge)
        if not _is_up(rec):
            await cmd.ip("link", "set", outer, "up")
        inner_rec = inner_links.get(inner, {})
        if inner_rec.get("address", mac) != mac:
            await cmd.ip("link", "set", inner, "address", mac, netns=ns)
        if not _is_up(inner_rec):
            await cmd.ip("link", "set", inner, "up", netns=ns)
        await self._ensure_addresses(ns, inner, set(addresses))
        return outer

    async def _ensure_addresses(self, ns: str, dev: str, wanted: set[str]) -> None:
        have: set[str] = set()
        for rec in await cmd.ip_json("addr", "show", "dev", dev, netns=ns):
            for info in rec.get("addr_info", []):
                if info.get("scope") == "link":
                    continue
                have.add(f"{info['local']}/{info['prefixlen']}")
        wanted = {str(ipaddress.ip_interface(a)) for a in wanted}
        for addr in sorted(wanted - have):
            extra = ["nodad"] if ":" in addr else []
            await cmd.ip("addr", "add", addr, "dev", dev, *extra, netns=ns)
        for addr in sorted(have - wanted):
            await cmd.ip("addr", "del", addr, "dev", dev, netns=ns)

    async def _remove_stale_ifs(self, ns: str, prefixes: tuple[str, ...],
                                wanted: set[str]) -> None:
        for name in await cmd.links(ns):
            if name.startswith(prefixes) and name not in wanted:
                await cmd.ip("link", "del", name, netns=ns)

    # -- DHCP ---------------------------------------------------------------------------
    async def _ensure_dhcp(self, state: HostState, report: ApplyReport) -> set[str]:
        keep: set[str] = set()
        existing = await cmd.netns_list()
        for net in state.networks:
            dhcp_port = next((p for p in state.ports if p.network_id == net.id
                              and p.device_owner == "network:dhcp"
                              and p.host in ("", state.host)), None)
            br = self._bridges.get(net.id)
            if not dhcp_subnets(net) or dhcp_port is None or br is None:
                continue
            ns = self._ns_dhcp(net.id)
            self._wanted_ns.add(ns)
            try:
                await self._ensure_ns(ns, existing)
                addrs = [f"{f.ip_address}/{_prefixlen(net, f.subnet_id)}"
                         for f in dhcp_port.fixed_ips if _prefixlen(net, f.subnet_id)]
                addrs.append(f"{METADATA_IP}/32")
                inner = dhcp_if(dhcp_port.id)
                keep.add(await self._ensure_veth(ns, dhcp_port.id, dhcp_port.mac_address, inner,
                                                 br, addrs, net.mtu))
                await self._remove_stale_ifs(ns, (DHCP_IF_PREFIX,), {inner})
                workdir = self._dhcp_dir(net.id)
                ports = [p for p in state.ports if p.network_id == net.id]
                await DnsmasqProcess(workdir).ensure(
                    ns, dnsmasq_argv(net, inner, workdir, self.options.dhcp_lease_time),
                    render_hosts(net, ports), render_opts(net, dhcp_port))
                await self.metadata.ensure(net.id, ns)
            except (cmd.CommandError, OSError) as exc:
                report.errors.append(f"DHCP for network {net.id}: {exc}")
        return keep

    # -- routers ------------------------------------------------------------------------
    async def _ensure_routers(self, state: HostState, report: ApplyReport) -> set[str]:
        keep: set[str] = set()
        existing = await cmd.netns_list()
        nets = {n.id: n for n in state.networks}
        for router in state.routers:
            self._wanted_ns.add(self._ns_router(router.id))
            try:
                keep |= await self._ensure_router(router, nets, existing)
            except (cmd.CommandError, OSError, KeyError) as exc:
                report.errors.append(f"router {router.id}: {exc}")
        return keep

    async def _ensure_router(self, router: RouterState, nets: dict[str, NetworkState],
                             existing: set[str]) -> set[str]:
        ns = self._ns_router(router.id)
        fresh = ns not in existing
        await self._ensure_ns(ns, existing)
        if fresh:
            await cmd.sysctl("net.ipv4.ip_forward", "1", ns)
            await cmd.sysctl("net.ipv6.conf.all.forwarding", "1", ns)
        keep: set[str] = set()
        inner_wanted: set[str] = set()
        by_port: dict[str, list[str]] = {}
        for itf in router.interfaces:
            by_port.setdefault(itf.port_id, []).append(f"{itf.ip_address}/{itf.prefixlen}")
        for itf in router.interfaces:
            br = self._bridges.get(itf.network_id)
            if br is None:
                raise KeyError(f"network {itf.network_id} has no bridge on this host")
            inner = router_if(itf.port_id)
            if inner in inner_wanted:
                continue
            inner_wanted.add(inner)
            keep.add(await self._ensure_veth(ns, itf.port_id, itf.mac_address, inner, br,
                                             by_port[itf.port_id],
                                             nets[itf.network_id].mtu if itf.network_id in nets
                                             else 1450))
        routes: dict[str, str] = {}
        gw = router.gateway
        if gw is not None:
            br = self._bridges.get(gw.network_id)
            if br is None:
                raise KeyError(f"external network {gw.network_id} has no bridge on this host")
            inner = gateway_if(gw.port_id)
            inner_wanted.add(inner)
            addrs = [f"{gw.ip_address}/{gw.prefixlen}"] + [
                f"{f.floating_ip_address}/{32 if ':' not in f.floating_ip_address else 128}"
                for f in router.floating_ips]
            mtu = nets[gw.network_id].mtu if gw.network_id in nets else 1500
            keep.add(await self._ensure_veth(ns, gw.port_id, gw.mac_address, inner, br, addrs,
                                             mtu))
            if gw.gateway_ip:
                routes["default"] = gw.gateway_ip
        await self._remove_stale_ifs(ns, (ROUTER_IF_PREFIX, GATEWAY_IF_PREFIX), inner_wanted)
        for dest, nexthop in router.routes:
            routes[str(ipaddress.ip_network(dest, strict=False))] = nexthop
        await self._ensure_routes(ns, routes)
        await cmd.nft(render_nat(router), netns=ns)
        advertiser = DnsmasqProcess(self._ra_dir(router.id))
        argv = ra_argv(router, nets, advertiser.workdir)
        if argv is None:
            await advertiser.stop()
        else:
            await advertiser.ensure(ns, argv, "", "")
        return keep

    async def _ensure_routes(self, ns: str, wanted: dict[str, str]) -> None:
        have: dict[str, str] = {}
        for family in ("-4", "-6"):
            for rec in await cmd.ip_json(family, "route", "show", "proto", "static", netns=ns):
                have[str(rec.get("dst"))] = str(rec.get("gateway", ""))
        for dest, via in sorted(wanted.items()):
            if have.get(dest) != via:
                await cmd.ip("route", "replace", dest, "via", via, "proto", "static", netns=ns)
        for dest in sorted(set(have) - set(wanted)):
            await cmd.ip("route", "del", dest, "proto", "static", netns=ns, check=False)

    # -- removal ------------------------------------------------------------------------
    async def _remove_stale_namespaces(self) -> None:
        prefix = self.options.netns_prefix
        wanted = self._wanted_ns  # DHCP served (a DHCP port, a DHCP subnet) and routers
        for ns in await cmd.netns_list():
            if ns.startswith((f"{prefix}qdhcp-", f"{prefix}qrouter-")) and ns not in wanted:
                await self._delete_ns(ns)
        existing = await cmd.netns_list()
        await self._remove_stale_dhcp_dirs(
            {ns.removeprefix(f"{prefix}qdhcp-") for ns in existing
             if ns.startswith(f"{prefix}qdhcp-")})
        await self._remove_stale_ra_dirs(
            {ns.removeprefix(f"{prefix}qrouter-") for ns in existing
             if ns.startswith(f"{prefix}qrouter-")})

    async def _remove_stale_ra_dirs(self, routers: set[str]) -> None:
        root = self.options.data_dir / "ra"
        if root.is_dir():
            for workdir in root.iterdir():
                if workdir.name not in routers:
                    await DnsmasqProcess(workdir).stop()
                    shutil.rmtree(workdir, ignore_errors=True)

    async def _remove_stale_dhcp_dirs(self, served: set[str]) -> None:
        root = self.options.data_dir / "dhcp"
        for network_id in list(self.metadata.served()):
            if network_id not in served:
                await self.metadata.remove(network_id)
        if not root.is_dir():
            return
        for workdir in root.iterdir():
            if workdir.name not in served:
                await DnsmasqProcess(workdir).stop()
                shutil.rmtree(workdir, ignore_errors=True)

    async def _delete_ns(self, ns: str) -> None:
        prefix = self.options.netns_prefix
        if ns.startswith(f"{prefix}qdhcp-"):
            network_id = ns.removeprefix(f"{prefix}qdhcp-")
            await self.metadata.remove(network_id)
            await DnsmasqProcess(self._dhcp_dir(network_id)).stop()
        if ns.startswith(f"{prefix}qrouter-"):
            workdir = self._ra_dir(ns.removeprefix(f"{prefix}qrouter-"))
            await DnsmasqProcess(workdir).stop()
            shutil.rmtree(workdir, ignore_errors=True)
        try:
            await cmd.run("ip", "netns", "del", ns)
        except cmd.CommandError as exc:
            log.warning("deleting namespace %s: %s", ns, exc)

    async def teardown(self) -> None:
        async with self._lock:
            with contextlib.suppress(cmd.CommandError):
                await cmd.nft(firewall.render_delete())
            prefix = self.options.netns_prefix
            for ns in await cmd.netns_list():
                if ns.startswith((f"{prefix}qdhcp-", f"{prefix}qrouter-")):
                    await self._delete_ns(ns)
            await self._remove_stale_dhcp_dirs(set())
            await self._remove_stale_ra_dirs(set())
            await self.metadata.close()
            self._bridges = {}
            await self._remove_stale_l2(set())
            self._state = None

    async def close(self) -> None:
        await self.metadata.close()
