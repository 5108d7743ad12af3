"""Compute tables (the Nova data model, kept in the compute service's own MetaData).

Three groups live in the one compute database:

- the API's records: flavors, keypairs, instances (+ metadata, tags, faults, actions, block
  device mappings, request specs), server groups, quotas, aggregates;
- the hosts: services (heartbeats) and compute nodes (hypervisors);
- placement: resource providers, their inventories and the allocations consumers hold
  (:mod:`stackling.compute.service.placement` owns these; claims are atomic there).

Instances are soft-deleted (``deleted``), as in Nova, so ``changes-since`` lists them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Index,
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


def _created() -> Mapped[datetime]:
    return mapped_column(UTCDateTime, default=utcnow, nullable=False)


def _updated() -> Mapped[datetime | None]:
    return mapped_column(UTCDateTime, nullable=True)


# -- flavors ----------------------------------------------------------------------------------
class Flavor(Base):
    __tablename__ = "flavors"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    flavorid: Mapped[str] = mapped_column(String(255), unique=True, nullable=False)
    name: Mapped[str] = mapped_column(String(255), unique=True, nullable=False)
    memory_mb: Mapped[int] = mapped_column(Integer, nullable=False)
    vcpus: Mapped[int] = mapped_column(Integer, nullable=False)
    root_gb: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    ephemeral_gb: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    swap: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    rxtx_factor: Mapped[float] = mapped_column(Float, nullable=False, default=1.0)
    is_public: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    disabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime | None] = _updated()


class FlavorExtraSpec(Base):
    __tablename__ = "flavor_extra_specs"
    __table_args__ = (UniqueConstraint("flavor_id", "key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    flavor_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("flavors.id", ondelete="CASCADE"), nullable=False, index=True)
    key: Mapped[str] = mapped_column(String(255), nullable=False)
    value: Mapped[str] = mapped_column(String(255), nullable=False)


class FlavorProject(Base):
    __tablename__ = "flavor_projects"
    __table_args__ = (UniqueConstraint("flavor_id", "project_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    flavor_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("flavors.id", ondelete="CASCADE"), nullable=False, index=True)
    project_id: Mapped[str] = mapped_column(String(255), nullable=False)


# -- keypairs ---------------------------------------------------------------------------------
class KeyPair(Base):
    __tablename__ = "key_pairs"
    __table_args__ = (UniqueConstraint("user_id", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(String(255), nullable=False)
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    fingerprint: Mapped[str] = mapped_column(String(255), nullable=False)
    public_key: Mapped[str] = mapped_column(Text, nullable=False)
    type: Mapped[str] = mapped_column(String(16), nullable=False, default="ssh")
    created_at: Mapped[datetime] = _created()


# -- instances --------------------------------------------------------------------------------
class Instance(Base):
    __tablename__ = "instances"
    __table_args__ = (
        Index("ix_instances_project_deleted_created", "project_id", "deleted", "created_at"),
        Index("ix_instances_host_deleted", "host", "deleted"),
        # changes-since polling (Nova: instances_updated_at_project_id_idx)
        Index("ix_instances_updated_project", "updated_at", "project_id"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, nullable=False)
    project_id: Mapped[str] = mapped_column(String(255), nullable=False)
    user_id: Mapped[str] = mapped_column(String(255), nullable=False)
    display_name: Mapped[str] = mapped_column(String(255), nullable=False, default="")
    display_description: Mapped[str | None] = mapped_column(Text, nullable=True)
    hostname: Mapped[str] = mapped_column(String(255), nullable=False, default="")
    reservation_id: Mapped[str] = mapped_column(String(255), nullable=False, index=True)
    launch_index: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    # where it runs (set by the scheduler's claim)
    host: Mapped[str | None] = mapped_column(String(255), nullable=True)
    node: Mapped[str | None] = mapped_column(String(255), nullable=True)
    availability_zone: Mapped[str | None] = mapped_column(String(255), nullable=True)
    # states (stackling.compute.states)
    vm_state: Mapped[str] = mapped_column(String(255), nullable=False)
    task_state: Mapped[str | None] = mapped_column(String(255), nullable=True)
    power_state: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    progress: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    # what it is made of: the flavor is copied in (a later flavor change or delete
    # does not change the server), as Nova's instance_extra.flavor
    flavor: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    vcpus: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    memory_mb: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    root_gb: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    ephemeral_gb: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    image_ref: Mapped[str] = mapped_column(String(255), nullable=False, default="")
    key_name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    key_data: Mapped[str | None] = mapped_column(Text, nullable=True)
    user_data: Mapped[str | None] = mapped_column(Text, nullable=True)
    config_drive: Mapped[str] = mapped_column(String(255), nullable=False, default="")
    auto_disk_config: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    access_ip_v4: Mapped[str | None] = mapped_column(String(39), nullable=True)
    access_ip_v6: Mapped[str | None] = mapped_column(String(39), nullable=True)
    root_device_name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    locked: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    locked_by: Mapped[str | None] = mapped_column(String(255), nullable=True)  # owner/admin
    locked_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    # what the API was asked for, kept for show and for rebuild/resize
    security_groups: Mapped[list[Any]] = mapped_column(JSON, nullable=False, default=list)
    system_metadata: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False,
                                                 index=True)
    launched_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    terminated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    deleted: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)


class InstanceMetadata(Base):
    __tablename__ = "instance_metadata"
    __table_args__ = (UniqueConstraint("instance_uuid", "key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    instance_uuid: Mapped[str] = mapped_column(
        String(36), ForeignKey("instances.uuid", ondelete="CASCADE"), nullable=False,
        index=True)
    key: Mapped[str] = mapped_column(String(255), nullable=False)
    value: Mapped[str] = mapped_column(String(255), nullable=False)


class InstanceTag(Base):
    __tablename__ = "instance_tags"
    instance_uuid: Mapped[str] = mapped_column(
        String(36), ForeignKey("instances.uuid", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(80), primary_key=True, index=True)


class InstanceFault(Base):
    __tablename__ = "instance_faults"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    instance_uuid: Mapped[str] = mapped_column(String(36), nullable=False, index=True)
    code: Mapped[int] = mapped_column(Integer, nullable=False)
    message: Mapped[str] = mapped_column(String(255), nullable=False)
    details: Mapped[str | None] = mapped_column(Text, nullable=True)
    host: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[datetime] = _created()


class InstanceAction(Base):
    __tablename__ = "instance_actions"
    __table_args__ = (Index("ix_instance_actions_instance_request", "instance_uuid",
                            "request_id"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    action: Mapped[str] = mapped_column(String(255), nullable=False)
    instance_uuid: Mapped[str] = mapped_column(String(36), nullable=False)
    request_id: Mapped[str] = mapped_column(String(255), nullable=False)
    user_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    project_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    start_time: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    finish_time: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    message: Mapped[str | None] = mapped_column(String(255), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)


class InstanceActionEvent(Base):
    __tablename__ = "instance_actions_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    action_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("instance_actions.id", ondelete="CASCADE"), nullable=False,
        index=True)
    event: Mapped[str] = mapped_column(String(255), nullable=False)
    start_time: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    finish_time: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    result: Mapped[str | None] = mapped_column(String(255), nullable=True)
    traceback: Mapped[str | None] = mapped_column(Text, nullable=True)
    host: Mapped[str | None] = mapped_column(String(255), nullable=True)
    details: Mapped[str | None] = mapped_column(Text, nullable=True)


class BlockDeviceMapping(Base):
    __tablename__ = "block_device_mapping"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, nullable=False)
    instance_uuid: Mapped[str] = mapped_column(
        String(36), ForeignKey("instances.uuid", ondelete="CASCADE"), nullable=False,
        index=True)
    source_type: Mapped[str] = mapped_column(String(32), nullable=False)
    destination_type: Mapped[str] = mapped_column(String(32), nullable=False)
    boot_index: Mapped[int | None] = mapped_column(Integer, nullable=True)
    device_name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    image_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    volume_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    snapshot_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    volume_size: Mapped[int | None] = mapped_column(Integer, nullable=True)
    delete_on_termination: Mapped[bool] = mapped_column(Boolean, nullable=False,
                                                        default=False)
    guest_format: Mapped[str | None] = mapped_column(String(255), nullable=True)
    disk_bus: Mapped[str | None] = mapped_column(String(255), nullable=True)
    device_type: Mapped[str | None] = mapped_column(String(255), nullable=True)
    volume_type: Mapped[str | None] = mapped_column(String(255), nullable=True)
    tag: Mapped[str | None] = mapped_column(String(255), nullable=True)
    attachment_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    created_at: Mapped[datetime] = _created()


class RequestSpec(Base):
    """What the user asked the scheduler for (AZ, hints, group), kept for show (2.96,
    2.100), rescheduling, resize and rebuild."""

    __tablename__ = "request_specs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    instance_uuid: Mapped[str] = mapped_column(
        String(36), ForeignKey("instances.uuid", ondelete="CASCADE"), unique=True,
        nullable=False)
    spec: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)


class Migration(Base):
    """A resize or move of an instance between hosts/flavors (Nova's migrations table)."""

    __tablename__ = "migrations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, nullable=False)
    instance_uuid: Mapped[str] = mapped_column(String(36), nullable=False, index=True)
    migration_type: Mapped[str] = mapped_column(String(32), nullable=False)
    status: Mapped[str] = mapped_column(String(255), nullable=False)
    source_compute: Mapped[str | None] = mapped_column(String(255), nullable=True)
    source_node: Mapped[str | None] = mapped_column(String(255), nullable=True)
    dest_compute: Mapped[str | None] = mapped_column(String(255), nullable=True)
    dest_node: Mapped[str | None] = mapped_column(String(255), nullable=True)
    old_flavor: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    new_flavor: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    project_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    user_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime | None] = _updated()


# -- server groups ----------------------------------------------------------------------------
class ServerGroup(Base):
    __tablename__ = "instance_groups"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, nullable=False)
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    user_id: Mapped[str] = mapped_column(String(255), nullable=False)
    project_id: Mapped[str] = mapped_column(String(255), nullable=False, index=True)
    policy: Mapped[str] = mapped_column(String(255), nullable=False)
    rules: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    created_at: Mapped[datetime] = _created()


class ServerGroupMember(Base):
    __tablename__ = "instance_group_member"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    group_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("instance_groups.id", ondelete="CASCADE"), nullable=False,
        index=True)
    instance_uuid: Mapped[str] = mapped_column(String(36), unique=True, nullable=False)


# -- quotas -----------------------------------------------------------------------------------
class Quota(Base):
    """A project's own limit for one resource (absent: the class default applies)."""

    __tablename__ = "quotas"
    __table_args__ = (UniqueConstraint("project_id", "user_id", "resource"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project_id: Mapped[str] = mapped_column(String(255), nullable=False)
    user_id: Mapped[str] = mapped_column(String(255), nullable=False, default="")
    resource: Mapped[str] = mapped_column(String(255), nullable=False)
    hard_limit: Mapped[int] = mapped_column(Integer, nullable=False)


class QuotaClass(Base):
    __tablename__ = "quota_classes"
    __table_args__ = (UniqueConstraint("class_name", "resource"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    class_name: Mapped[str] = mapped_column(String(255), nullable=False)
    resource: Mapped[str] = mapped_column(String(255), nullable=False)
    hard_limit: Mapped[int] = mapped_column(Integer, nullable=False)


class ProjectLock(Base):
    """One row per project, bumped first in every transaction that checks a project's
    quota: the row lock serializes those checks (usage is counted from the real rows)."""

    __tablename__ = "project_locks"
    project_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    generation: Mapped[int] = mapped_column(Integer, nullable=False, default=0)


# -- aggregates (availability zones) ------------------------------------------------------------
class Aggregate(Base):
    __tablename__ = "aggregates"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, nullable=False)
    name: Mapped[str] = mapped_column(String(255), unique=True, nullable=False)
    availability_zone: Mapped[str | None] = mapped_column(String(255), nullable=True)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSON, nullable=False,
                                                     default=dict)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime | None] = _updated()


class AggregateHost(Base):
    __tablename__ = "aggregate_hosts"
    __table_args__ = (UniqueConstraint("aggregate_id", "host"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    aggregate_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("aggregates.id", ondelete="CASCADE"), nullable=False, index=True)
    host: Mapped[str] = mapped_column(String(255), nullable=False, index=True)


# -- hosts ------------------------------------------------------------------------------------
class Service(Base):
    """A compute process (``nova-compute`` on a host, ``nova-scheduler``, ...) and its
    heartbeat: up while ``last_seen_up`` is recent."""

    __tablename__ = "services"
    __table_args__ = (UniqueConstraint("host", "binary"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, nullable=False)
    host: Mapped[str] = mapped_column(String(255), nullable=False)
    binary: Mapped[str] = mapped_column(String(255), nullable=False)
    topic: Mapped[str | None] = mapped_column(String(255), nullable=True)
    report_count: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    disabled: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    disabled_reason: Mapped[str | None] = mapped_column(String(255), nullable=True)
    forced_down: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    last_seen_up: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime | None] = _updated()


class ComputeNode(Base):
    """A hypervisor; its resource provider in placement has the same uuid."""

    __tablename__ = "compute_nodes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, nullable=False)
    host: Mapped[str] = mapped_column(String(255), nullable=False, index=True)
    hypervisor_hostname: Mapped[str] = mapped_column(String(255), unique=True, nullable=False)
    hypervisor_type: Mapped[str] = mapped_column(String(255), nullable=False)
    hypervisor_version: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    vcpus: Mapped[int] = mapped_column(Integer, nullable=False)
    memory_mb: Mapped[int] = mapped_column(Integer, nullable=False)
    local_gb: Mapped[int] = mapped_column(Integer, nullable=False)
    host_ip: Mapped[str | None] = mapped_column(String(39), nullable=True)
    cpu_info: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False, default=dict)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime | None] = _updated()


# -- placement ----------------------------------------------------------------------------------
class ResourceProvider(Base):
    __tablename__ = "resource_providers"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    uuid: Mapped[str] = mapped_column(String(36), unique=True, nullable=False)
    name: Mapped[str] = mapped_column(String(255), unique=True, nullable=False)
    # bumped by every claim and inventory change: the claim's serialization point
    generation: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime | None] = _updated()


class Inventory(Base):
    __tablename__ = "inventories"
    __table_args__ = (UniqueConstraint("resource_provider_id", "resource_class"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    resource_provider_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("resource_providers.id", ondelete="CASCADE"), nullable=False,
        index=True)
    resource_class: Mapped[str] = mapped_column(String(255), nullable=False)
    total: Mapped[int] = mapped_column(Integer, nullable=False)
    reserved: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    min_unit: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    max_unit: Mapped[int] = mapped_column(Integer, nullable=False)
    step_size: Mapped[int] = mapped_column(Integer, nullable=False, default=1)
    allocation_ratio: Mapped[float] = mapped_column(Float, nullable=False, default=1.0)


class Allocation(Base):
    __tablename__ = "allocations"
    __table_args__ = (
        Index("ix_allocations_rp_rc", "resource_provider_id", "resource_class"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    resource_provider_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("resource_providers.id", ondelete="CASCADE"), nullable=False)
    consumer_id: Mapped[str] = mapped_column(String(36), nullable=False, index=True)
    project_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    user_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    resource_class: Mapped[str] = mapped_column(String(255), nullable=False)
    used: Mapped[int] = mapped_column(Integer, nullable=False)
