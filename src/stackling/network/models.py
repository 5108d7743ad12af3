"""Network tables (the Neutron data model, in the network service's own MetaData).

List-valued attributes that are only ever read and written with their owner (allocation
pools, DNS servers, host routes, allowed address pairs, a port's security groups, router
routes) are JSON columns. What must be unique across rows is a real constraint:

- ``ip_allocations`` (subnet, address): IPAM can never hand out one address twice, whatever
  the concurrency (a lost race is an IntegrityError, retried on the next free address);
- ``ports`` (network, MAC);
- ``default_security_groups`` (project): the lazily created default group exists once;
- ``agents`` (type, host), ``tags`` (resource, tag), ``quotas`` (project, resource).

``net_revision`` is a single row every write transaction bumps first: it serialises
writers (the row lock; SQLite's write lock) and is the ``HostState.revision`` agents see.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from stackling.common.timeutils import utcnow
from stackling.db.base import UTCDateTime, make_metadata


class Base(DeclarativeBase):
    metadata = make_metadata()


def _id() -> Mapped[str]:
    return mapped_column(String(36), primary_key=True)


def _project() -> Mapped[str]:
    return mapped_column(String(255), nullable=False, default="", index=True)


def _created() -> Mapped[datetime]:
    return mapped_column(UTCDateTime, default=utcnow, nullable=False)


def _updated() -> Mapped[datetime]:
    return mapped_column(UTCDateTime, default=utcnow, nullable=False)


def _json_list() -> Mapped[list[Any]]:
    return mapped_column(JSON, nullable=False, default=list)


class StandardAttrs:
    """Neutron's standard attributes: description, timestamps, revision_number."""

    name: Mapped[str] = mapped_column(String(255), nullable=False, default="")
    description: Mapped[str] = mapped_column(String(255), nullable=False, default="")
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()
    revision_number: Mapped[int] = mapped_column(Integer, nullable=False, default=0)


class Revision(Base):
    __tablename__ = "net_revision"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    value: Mapped[int] = mapped_column(Integer, nullable=False, default=0)


class Network(StandardAttrs, Base):
    __tablename__ = "networks"
    __table_args__ = (UniqueConstraint("network_type", "physical_network", "segmentation_id"),)
    id: Mapped[str] = _id()
    project_id: Mapped[str] = _project()
    admin_state_up: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="ACTIVE")
    shared: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    external: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    is_default: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    mtu: Mapped[int] = mapped_column(Integer, nullable=False, default=1450)
    network_type: Mapped[str] = mapped_column(String(32), nullable=False, default="vxlan")
    physical_network: Mapped[str | None] = mapped_column(String(64), nullable=True)
    segmentation_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    port_security_enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    availability_zone_hints: Mapped[list[str]] = _json_list()
    dns_domain: Mapped[str] = mapped_column(String(255), nullable=False, default="")


class Subnet(StandardAttrs, Base):
    __tablename__ = "subnets"
    id: Mapped[str] = _id()
    project_id: Mapped[str] = _project()
    network_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("networks.id", ondelete="CASCADE"), nullable=False, index=True)
    cidr: Mapped[str] = mapped_column(String(64), nullable=False)
    ip_version: Mapped[int] = mapped_column(Integer, nullable=False, default=4)
    gateway_ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    enable_dhcp: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    allocation_pools: Mapped[list[list[str]]] = _json_list()  # [[start, end], ...]
    dns_nameservers: Mapped[list[str]] = _json_list()
    host_routes: Mapped[list[list[str]]] = _json_list()  # [[destination, nexthop], ...]
    ipv6_ra_mode: Mapped[str | None] = mapped_column(String(32), nullable=True)
    ipv6_address_mode: Mapped[str | None] = mapped_column(String(32), nullable=True)
    subnetpool_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)


class SubnetPool(StandardAttrs, Base):
    __tablename__ = "subnetpools"
    id: Mapped[str] = _id()
    project_id: Mapped[str] = _project()
    ip_version: Mapped[int] = mapped_column(Integer, nullable=False, default=4)
    prefixes: Mapped[list[str]] = _json_list()
    default_prefixlen: Mapped[int] = mapped_column(Integer, nullable=False)
    min_prefixlen: Mapped[int] = mapped_column(Integer, nullable=False)
    max_prefixlen: Mapped[int] = mapped_column(Integer, nullable=False)
    shared: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    is_default: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    default_quota: Mapped[int | None] = mapped_column(Integer, nullable=True)


class Port(StandardAttrs, Base):
    __tablename__ = "ports"
    __table_args__ = (UniqueConstraint("network_id", "mac_address"),)
    id: Mapped[str] = _id()
    project_id: Mapped[str] = _project()
    network_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("networks.id"), nullable=False, index=True)
    mac_address: Mapped[str] = mapped_column(String(32), nullable=False)
    admin_state_up: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="DOWN")
    device_owner: Mapped[str] = mapped_column(String(255), nullable=False, default="")
    device_id: Mapped[str] = mapped_column(String(255), nullable=False, default="",
                                           index=True)
    host: Mapped[str] = mapped_column(String(255), nullable=False, default="", index=True)
    vnic_type: Mapped[str] = mapped_column(String(64), nullable=False, default="normal")
    vif_type: Mapped[str] = mapped_column(String(64), nullable=False, default="unbound")
    vif_details: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    binding_profile: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False,
                                                            default=dict)
    port_security_enabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    allowed_address_pairs: Mapped[list[dict[str, str]]] = _json_list()
    security_group_ids: Mapped[list[str]] = _json_list()
    dns_name: Mapped[str] = mapped_column(String(255), nullable=False, default="")


class IPAllocation(Base):
    __tablename__ = "ip_allocations"
    __table_args__ = (UniqueConstraint("subnet_id", "ip_address"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    port_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("ports.id", ondelete="CASCADE"), nullable=False, index=True)
    subnet_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("subnets.id"), nullable=False, index=True)
    network_id: Mapped[str] = mapped_column(String(36), nullable=False, index=True)
    ip_address: Mapped[str] = mapped_column(String(64), nullable=False)


class SecurityGroup(StandardAttrs, Base):
    __tablename__ = "security_groups"
    id: Mapped[str] = _id()
    project_id: Mapped[str] = _project()
    stateful: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)


class DefaultSecurityGroup(Base):
    __tablename__ = "default_security_groups"
    project_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    security_group_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("security_groups.id", ondelete="CASCADE"), nullable=False)


class SecurityGroupRule(Base):
    __tablename__ = "security_group_rules"
    id: Mapped[str] = _id()
    project_id: Mapped[str] = _project()
    security_group_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("security_groups.id", ondelete="CASCADE"), nullable=False,
        index=True)
    direction: Mapped[str] = mapped_column(String(16), nullable=False)
    ethertype: Mapped[str] = mapped_column(String(8), nullable=False, default="IPv4")
    protocol: Mapped[str | None] = mapped_column(String(40), nullable=True)
    port_range_min: Mapped[int | None] = mapped_column(Integer, nullable=True)
    port_range_max: Mapped[int | None] = mapped_column(Integer, nullable=True)
    remote_ip_prefix: Mapped[str | None] = mapped_column(String(64), nullable=True)
    remote_group_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    description: Mapped[str] = mapped_column(String(255), nullable=False, default="")
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()
    revision_number: Mapped[int] = mapped_column(Integer, nullable=False, default=0)


class Router(StandardAttrs, Base):
    __tablename__ = "routers"
    id: Mapped[str] = _id()
    project_id: Mapped[str] = _project()
    admin_state_up: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="ACTIVE")
    gw_port_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    enable_snat: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    routes: Mapped[list[dict[str, str]]] = _json_list()
    host: Mapped[str] = mapped_column(String(255), nullable=False, default="")  # its l3 agent
    availability_zone_hints: Mapped[list[str]] = _json_list()


class FloatingIP(Base):
    __tablename__ = "floating_ips"
    id: Mapped[str] = _id()
    project_id: Mapped[str] = _project()
    floating_network_id: Mapped[str] = mapped_column(String(36), nullable=False)
    floating_port_id: Mapped[str] = mapped_column(String(36), nullable=False)
    floating_ip_address: Mapped[str] = mapped_column(String(64), nullable=False)
    fixed_port_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    fixed_ip_address: Mapped[str | None] = mapped_column(String(64), nullable=True)
    router_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    status: Mapped[str] = mapped_column(String(16), nullable=False, default="DOWN")
    description: Mapped[str] = mapped_column(String(255), nullable=False, default="")
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _updated()
    revision_number: Mapped[int] = mapped_column(Integer, nullable=False, default=0)


class Tag(Base):
    __tablename__ = "tags"
    resource_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    tag: Mapped[str] = mapped_column(String(255), primary_key=True)


class Quota(Base):
    __tablename__ = "quotas"
    project_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    resource: Mapped[str] = mapped_column(String(64), primary_key=True)
    limit: Mapped[int] = mapped_column(Integer, nullable=False)


class Agent(Base):
    __tablename__ = "agents"
    __table_args__ = (UniqueConstraint("agent_type", "host"),)
    id: Mapped[str] = _id()
    agent_type: Mapped[str] = mapped_column(String(255), nullable=False)
    binary: Mapped[str] = mapped_column(String(255), nullable=False)
    topic: Mapped[str] = mapped_column(String(255), nullable=False)
    host: Mapped[str] = mapped_column(String(255), nullable=False)
    admin_state_up: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    availability_zone: Mapped[str | None] = mapped_column(String(255), nullable=True)
    configurations: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    created_at: Mapped[datetime] = _created()
    started_at: Mapped[datetime] = _created()
    heartbeat_at: Mapped[datetime] = _created()
