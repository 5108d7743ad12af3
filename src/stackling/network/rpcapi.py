"""The network RPC surface: what the network server and its agents exchange on the bus.

Who talks to whom (the seeds' neutron-server and its L2/L3/DHCP/metadata agents)::

    agent   --GetHostState (call)--> "network"          the whole desired state for one host
    server  --HostStateChanged (fanout)--> "network.agents"   "re-fetch, something changed"
    agent   --PortsWired (cast)--> "network"             taps plugged and rules applied
    agent   --AgentHeartbeat (cast)--> "network"         for /v2.0/agents and "alive"

The agents are declarative: they never receive "create bridge X", only the whole desired state
(:class:`HostState`), and reconcile the kernel to it (so a restart, a lost message or a second
delivery are all the same case). The server answers :class:`GetHostState` from its database.

The message classes ARE the interface: a field added in a minor version must have a default;
anything else is a major bump (see :mod:`stackling.bus.message`). Nothing here touches a
database, so agents import this module freely.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from stackling.bus import Message, register

SERVER_TOPIC = "network"
AGENTS_FANOUT = "network.agents"

#: Agent roles: ``l2`` (bridges, VXLAN, taps, security groups: every node with VMs),
#: ``dhcp`` (dnsmasq + metadata proxy per network) and ``l3`` (router namespaces, NAT).
ROLES = ("l2", "dhcp", "l3")


class _Payload(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class FixedIP(_Payload):
    subnet_id: str
    ip_address: str


class SubnetState(_Payload):
    id: str
    network_id: str
    cidr: str
    ip_version: int = 4
    gateway_ip: str | None = None
    enable_dhcp: bool = True
    allocation_pools: list[tuple[str, str]] = Field(default_factory=list)  # (start, end)
    dns_nameservers: list[str] = Field(default_factory=list)
    host_routes: list[tuple[str, str]] = Field(default_factory=list)  # (destination, nexthop)
    #: IPv6 only, Neutron's values: "slaac", "dhcpv6-stateful", "dhcpv6-stateless" or None
    #: (the router sends no router advertisements for the subnet)
    ipv6_ra_mode: str | None = None
    ipv6_address_mode: str | None = None


class NetworkState(_Payload):
    id: str
    project_id: str = ""
    name: str = ""
    mtu: int = 1450
    network_type: str = "vxlan"  # "vxlan" | "flat" (provider/external) | "local"
    segmentation_id: int | None = None  # the VNI for vxlan
    physical_network: str | None = None  # flat: the host bridge/interface it rides on
    router_external: bool = False
    admin_state_up: bool = True
    subnets: list[SubnetState] = Field(default_factory=list)


class SecurityGroupRuleState(_Payload):
    id: str
    direction: str  # "ingress" | "egress"
    ethertype: str = "IPv4"  # "IPv4" | "IPv6"
    protocol: str | None = None  # None = any; "tcp", "udp", "icmp", "icmpv6" or a number
    port_range_min: int | None = None  # for icmp: the type
    port_range_max: int | None = None  # for icmp: the code
    remote_ip_prefix: str | None = None
    remote_group_id: str | None = None


class SecurityGroupState(_Payload):
    id: str
    stateful: bool = True
    rules: list[SecurityGroupRuleState] = Field(default_factory=list)
    #: every fixed IP (and allowed address pair) of the group's ports, cloud-wide, so
    #: ``remote_group_id`` rules can be rendered on any host.
    member_ips: list[str] = Field(default_factory=list)


class PortState(_Payload):
    id: str
    network_id: str
    project_id: str = ""
    mac_address: str
    fixed_ips: list[FixedIP] = Field(default_factory=list)
    device_owner: str = ""  # "compute:nova", "network:dhcp", "network:router_interface", ...
    device_id: str = ""  # the instance uuid for compute ports
    host: str = ""  # binding:host_id
    admin_state_up: bool = True
    port_security_enabled: bool = True
    security_group_ids: list[str] = Field(default_factory=list)
    #: (ip or cidr, mac or None for the port's own)
    allowed_address_pairs: list[tuple[str, str | None]] = Field(default_factory=list)

    @property
    def tap_name(self) -> str:
        """The VM's tap device: what the compute driver creates and the agent plugs."""
        return tap_name(self.id)


class FloatingIPState(_Payload):
    id: str
    floating_ip_address: str
    fixed_ip_address: str
    port_id: str


class RouterInterfaceState(_Payload):
    port_id: str
    network_id: str
    subnet_id: str
    ip_address: str
    prefixlen: int
    mac_address: str


class RouterGatewayState(_Payload):
    port_id: str
    network_id: str  # the external network
    ip_address: str
    prefixlen: int
    mac_address: str
    gateway_ip: str | None = None  # the external subnet's gateway (the default route)
    enable_snat: bool = True


class RouterState(_Payload):
    id: str
    project_id: str = ""
    admin_state_up: bool = True
    gateway: RouterGatewayState | None = None
    interfaces: list[RouterInterfaceState] = Field(default_factory=list)
    routes: list[tuple[str, str]] = Field(default_factory=list)  # (destination, nexthop)
    floating_ips: list[FloatingIPState] = Field(default_factory=list)


class HostState(_Payload):
    """Everything one host's agent must realise. ``networks`` holds every network the host
    touches (its ports' networks; for ``dhcp``/``l3`` roles also the ones it serves).
    ``ports`` holds the ports bound to this host plus, for the ``dhcp`` role, every port of the
    served networks (dnsmasq needs their static host entries) and the DHCP ports themselves."""

    host: str
    revision: int = 0  # grows with every change; an agent may skip a state it already applied
    networks: list[NetworkState] = Field(default_factory=list)
    ports: list[PortState] = Field(default_factory=list)
    security_groups: list[SecurityGroupState] = Field(default_factory=list)
    routers: list[RouterState] = Field(default_factory=list)
    #: VXLAN peers: host -> tunnel endpoint IP, for every other host with an ``l2`` agent.
    tunnel_peers: dict[str, str] = Field(default_factory=dict)


def tap_name(port_id: str) -> str:
    """Neutron's naming: ``tap`` + the first 11 characters of the port id (15-char limit)."""
    return ("tap" + port_id)[:14]


# -- messages -----------------------------------------------------------------------------------
@register
class GetHostState(Message):
    """Agent -> server (call): the desired state for ``host`` given its ``roles``; the reply
    is a :class:`HostStateReply`."""

    NAME: ClassVar[str] = "network.server.get_host_state"
    VERSION: ClassVar[str] = "1.0"
    host: str
    roles: list[str] = Field(default_factory=lambda: ["l2", "dhcp", "l3"])
    tunnel_ip: str | None = None


@register
class HostStateReply(Message):
    NAME: ClassVar[str] = "network.server.host_state"
    VERSION: ClassVar[str] = "1.0"
    state: HostState


@register
class HostStateChanged(Message):
    """Server -> every agent (fanout on :data:`AGENTS_FANOUT`): fetch your state again.
    ``hosts`` empty means everyone; otherwise only those hosts need to."""

    NAME: ClassVar[str] = "network.agent.host_state_changed"
    VERSION: ClassVar[str] = "1.0"
    revision: int = 0
    hosts: list[str] = Field(default_factory=list)


@register
class PortsWired(Message):
    """Agent -> server (cast): these ports are plugged, with rules applied (the server marks
    them ACTIVE and posts ``network-vif-plugged`` to compute for compute-owned ports).
    ``failed`` maps port id -> a readable reason."""

    NAME: ClassVar[str] = "network.server.ports_wired"
    VERSION: ClassVar[str] = "1.0"
    host: str
    port_ids: list[str] = Field(default_factory=list)
    failed: dict[str, str] = Field(default_factory=dict)


@register
class AgentHeartbeat(Message):
    """Agent -> server (cast), every few seconds: alive, with its roles (``/v2.0/agents``)."""

    NAME: ClassVar[str] = "network.server.agent_heartbeat"
    VERSION: ClassVar[str] = "1.0"
    host: str
    roles: list[str] = Field(default_factory=list)
    dataplane: str = "noop"
    tunnel_ip: str | None = None
    applied_revision: int = 0
