"""DHCP for one network: dnsmasq inside ``qdhcp-<network id>`` with static host entries.

Rendering (:func:`render_hosts`, :func:`render_opts`, :func:`dnsmasq_argv`) is pure; the
process side (:class:`DnsmasqProcess`) keeps one dnsmasq per network: started when missing,
SIGHUP when only the host or option files changed (dnsmasq re-reads both), restarted when
its command line changed (subnets added/removed), killed when the network goes away.

Every address is static (``dhcp-range=...,static``): a VM only ever gets its own port's
address, looked up by MAC. IPv6 subnets are served statefully (DHCPv6, same host entries);
router advertisements are not sent by dnsmasq (a router's job; see docs/decisions.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ipaddress
import logging
import os
import signal
from collections.abc import Sequence
from pathlib import Path

from stackling.network.dataplane.linuxbridge import cmd
from stackling.network.rpcapi import NetworkState, PortState, SubnetState

log = logging.getLogger("stackling.network.dataplane")

METADATA_IP = "169.254.169.254"
DOMAIN = "openstacklocal"


def _tag(index: int) -> str:
    return f"subnet{index}"


def dhcp_subnets(network: NetworkState) -> list[SubnetState]:
    return sorted((s for s in network.subnets if s.enable_dhcp), key=lambda s: s.id)


def host_name(ip: str) -> str:
    return "host-" + ip.replace(".", "-").replace(":", "-")


def render_hosts(network: NetworkState, ports: Sequence[PortState]) -> str:
    """dnsmasq ``--dhcp-hostsfile``: one line per fixed IP on a DHCP-enabled subnet."""
    served = {s.id: s for s in dhcp_subnets(network)}
    lines = []
    for port in sorted(ports, key=lambda p: p.id):
        if port.network_id != network.id or port.device_owner == "network:dhcp":
            continue
        for fixed in port.fixed_ips:
            subnet = served.get(fixed.subnet_id)
            if subnet is None:
                continue
            addr = fixed.ip_address if subnet.ip_version == 4 else f"[{fixed.ip_address}]"
            lines.append(f"{port.mac_address.lower()},{host_name(fixed.ip_address)},{addr}")
    return "".join(line + "\n" for line in lines)


def render_opts(network: NetworkState, dhcp_port: PortState | None,
                metadata: bool = True) -> str:
    """dnsmasq ``--dhcp-optsfile``: router, DNS servers, host routes (and the metadata route
    to this DHCP port, so isolated networks reach 169.254.169.254 too) per subnet."""
    dhcp_ips = {f.subnet_id: f.ip_address for f in (dhcp_port.fixed_ips if dhcp_port else [])}
    lines = []
    for index, subnet in enumerate(dhcp_subnets(network)):
        tag = f"tag:{_tag(index)}"
        if subnet.ip_version == 6:
            if subnet.dns_nameservers:
                servers = ",".join(f"[{d}]" for d in subnet.dns_nameservers)
                lines.append(f"{tag},option6:dns-server,{servers}")
            continue
        lines.append(f"{tag},option:router" + (f",{subnet.gateway_ip}" if subnet.gateway_ip
                                                 else ""))
        if subnet.dns_nameservers:
            lines.append(f"{tag},option:dns-server,{','.join(subnet.dns_nameservers)}")
        routes: list[tuple[str, str]] = []
        if metadata and subnet.id in dhcp_ips:
            routes.append((f"{METADATA_IP}/32", dhcp_ips[subnet.id]))
        routes += [(d, n) for d, n in subnet.host_routes if ipaddress.ip_network(d).version == 4]
        if routes:
            if subnet.gateway_ip:  # RFC 3442: with classless routes the router option is
                routes.append(("0.0.0.0/0", subnet.gateway_ip))  # ignored; repeat it
            flat = ",".join(f"{d},{n}" for d, n in routes)
            lines.append(f"{tag},option:classless-static-route,{flat}")
            lines.append(f"{tag},249,{flat}")
    return "".join(line + "\n" for line in lines)


def dnsmasq_argv(network: NetworkState, interface: str, workdir: Path, lease_time: int,
                 binary: str = "dnsmasq") -> list[str]:
    argv = [binary, "--no-hosts", "--no-resolv", "--port=0", "--conf-file=/dev/null",
            f"--pid-file={workdir / 'pid'}", f"--dhcp-hostsfile={workdir / 'host'}",
            f"--dhcp-optsfile={workdir / 'opts'}", f"--dhcp-leasefile={workdir / 'leases'}",
            # it re-reads the host/opts files on SIGHUP, after dropping privileges, and the
            # data dir is private to root: stay root (docs/decisions.md)
            "--user=root", f"--log-facility={workdir / 'log'}",
            f"--interface={interface}", "--except-interface=lo", "--bind-interfaces",
            "--dhcp-authoritative", f"--domain={DOMAIN}", "--dhcp-lease-max=65536"]
    for index, subnet in enumerate(dhcp_subnets(network)):
        net = ipaddress.ip_network(subnet.cidr, strict=False)
        mask = str(net.netmask) if net.version == 4 else str(net.prefixlen)
        argv.append(f"--dhcp-range=set:{_tag(index)},{net.network_address},static,{mask},"
                    f"{lease_time}s")
    return argv


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class DnsmasqProcess:
    """The dnsmasq of one network; its files live in ``workdir``."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir

    @property
    def pid_file(self) -> Path:
        return self.workdir / "pid"

    def pid(self) -> int | None:
        """The running dnsmasq's pid, only if it is really ours (cmdline names our pid file)."""
        try:
            pid = int(self.pid_file.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            return None
        if f"--pid-file={self.pid_file}".encode() in cmdline:
            return pid
        return None

    def _write(self, name: str, text: str) -> bool:
        path = self.workdir / name
        with contextlib.suppress(OSError):
            if path.read_text() == text:
                return False
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, path)
        return True

    async def ensure(self, netns: str, argv: list[str], hosts: str, opts: str) -> None:
        """Start, SIGHUP or restart dnsmasq so it serves ``hosts``/``opts`` with ``argv``."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        changed = self._write("host", hosts) | self._write("opts", opts)
        fingerprint = hashlib.sha256("\0".join(argv).encode()).hexdigest()
        argv_changed = self._write("cmdline", fingerprint)
        pid = self.pid()
        if pid is not None and argv_changed:
            await self.stop()
            pid = None
        if pid is None:
            (self.workdir / "leases").touch()
            await cmd.run(*argv, netns=netns)
            log.info("dnsmasq started in %s", netns)
        elif changed:
            os.kill(pid, signal.SIGHUP)

    async def stop(self) -> None:
        pid = self.pid()
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        for _ in range(50):
            if self.pid() is None or not _alive(pid):
                break
            await asyncio.sleep(0.05)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            self.pid_file.unlink()
