"""Block storage tables (Cinder's data model, in the volume service's own MetaData).

Rows are soft-deleted as in Cinder (``deleted`` set) so an id is never reused and a deleted
volume can still be shown to an admin's ``?deleted`` query. Status changes are compare-and-
swap (``UPDATE ... WHERE status IN (expected)``): two concurrent actions cannot both win.

Metadata, admin metadata and the image metadata a volume inherits from its image are JSON
columns (string to string), as small as Cinder's rows and without three side tables.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from stackling.db.base import UTCDateTime, make_metadata


class Base(DeclarativeBase):
    metadata = make_metadata()


class Volume(Base):
    __tablename__ = "volumes"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(255), nullable=False)
    user_id: Mapped[str] = mapped_column(String(255), nullable=False)
    name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    size: Mapped[int] = mapped_column(Integer, nullable=False)
    status: Mapped[str] = mapped_column(String(30), nullable=False)
    attach_status: Mapped[str] = mapped_column(String(30), default="detached", nullable=False)
    migration_status: Mapped[str | None] = mapped_column(String(30), nullable=True)
    availability_zone: Mapped[str] = mapped_column(String(255), nullable=False)
    volume_type_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    host: Mapped[str | None] = mapped_column(String(255), nullable=True)  # host@backend#pool
    bootable: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    multiattach: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    snapshot_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    source_volid: Mapped[str | None] = mapped_column(String(36), nullable=True)
    image_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    backup_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    group_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    provider_location: Mapped[str | None] = mapped_column(Text, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)  # why it is in error
    meta: Mapped[dict[str, str]] = mapped_column(JSON, default=dict, nullable=False)
    admin_meta: Mapped[dict[str, str]] = mapped_column(JSON, default=dict, nullable=False)
    image_meta: Mapped[dict[str, str]] = mapped_column(JSON, default=dict, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    launched_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)

    __table_args__ = (
        Index("ix_volumes_project_deleted", "project_id", "deleted"),
        Index("ix_volumes_created_at_id", "created_at", "id"),
        Index("ix_volumes_host", "host"),
    )


class Attachment(Base):
    """One attachment of a volume to an instance (Cinder's volume_attachment)."""

    __tablename__ = "volume_attachments"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    volume_id: Mapped[str] = mapped_column(String(36), nullable=False, index=True)
    instance_uuid: Mapped[str | None] = mapped_column(String(36), nullable=True)
    attached_host: Mapped[str | None] = mapped_column(String(255), nullable=True)
    mountpoint: Mapped[str | None] = mapped_column(String(255), nullable=True)
    attach_status: Mapped[str] = mapped_column(String(30), nullable=False)
    attach_mode: Mapped[str] = mapped_column(String(10), default="rw", nullable=False)
    connector: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    connection_info: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    attach_time: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    detach_time: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)


class Snapshot(Base):
    __tablename__ = "snapshots"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    volume_id: Mapped[str] = mapped_column(String(36), nullable=False, index=True)
    project_id: Mapped[str] = mapped_column(String(255), nullable=False)
    user_id: Mapped[str] = mapped_column(String(255), nullable=False)
    name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    status: Mapped[str] = mapped_column(String(30), nullable=False)
    progress: Mapped[str] = mapped_column(String(10), default="0%", nullable=False)
    size: Mapped[int] = mapped_column(Integer, nullable=False)
    host: Mapped[str | None] = mapped_column(String(255), nullable=True)
    volume_type_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    group_snapshot_id: Mapped[str | None] = mapped_column(String(36), nullable=True,
                                                          index=True)
    meta: Mapped[dict[str, str]] = mapped_column(JSON, default=dict, nullable=False)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)

    __table_args__ = (Index("ix_snapshots_project_deleted", "project_id", "deleted"),)


class GroupType(Base):
    __tablename__ = "group_types"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    is_public: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)
    group_specs: Mapped[dict[str, str]] = mapped_column(JSON, default=dict, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)


class Group(Base):
    """A generic volume group (3.13+): volumes of the listed types, snapshotted together.
    ``status`` ``creating`` (a group made from a source) becomes ``available`` or
    ``error`` from its volumes' states when it is next read."""

    __tablename__ = "groups"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(255), nullable=False, index=True)
    user_id: Mapped[str] = mapped_column(String(255), nullable=False)
    name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    status: Mapped[str] = mapped_column(String(30), nullable=False)
    group_type_id: Mapped[str] = mapped_column(String(36), nullable=False)
    volume_type_ids: Mapped[list[str]] = mapped_column(JSON, default=list, nullable=False)
    availability_zone: Mapped[str] = mapped_column(String(255), nullable=False)
    group_snapshot_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    source_group_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)


class GroupSnapshot(Base):
    """Snapshots of every volume of a group, taken together; its status follows its
    snapshots' (all available: available; any error: error; all gone: deleted)."""

    __tablename__ = "group_snapshots"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    group_id: Mapped[str] = mapped_column(String(36), nullable=False, index=True)
    project_id: Mapped[str] = mapped_column(String(255), nullable=False)
    user_id: Mapped[str] = mapped_column(String(255), nullable=False)
    name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    status: Mapped[str] = mapped_column(String(30), nullable=False)
    group_type_id: Mapped[str] = mapped_column(String(36), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)


class VolumeType(Base):
    __tablename__ = "volume_types"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    is_public: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)
    extra_specs: Mapped[dict[str, str]] = mapped_column(JSON, default=dict, nullable=False)
    qos_specs_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    # the type's encryption spec (provider, cipher, key_size, control_location, ids and
    # times); volumes of an encrypted type are refused: stackling cannot encrypt yet
    encryption: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)

    __table_args__ = (Index("ix_volume_types_name_deleted", "name", "deleted"),)


class QosSpec(Base):
    """Quality-of-service specs a volume type may point at (front-end: the hypervisor
    throttles; back-end: the backend does; stackling's backends record them only)."""

    __tablename__ = "qos_specs"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), nullable=False)
    consumer: Mapped[str] = mapped_column(String(20), nullable=False)
    specs: Mapped[dict[str, str]] = mapped_column(JSON, default=dict, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)


class UserMessage(Base):
    """What went wrong, for the user (Cinder's messages API, 3.3+)."""

    __tablename__ = "messages"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(255), nullable=False, index=True)
    request_id: Mapped[str] = mapped_column(String(255), nullable=False)
    resource_type: Mapped[str] = mapped_column(String(255), nullable=False)
    resource_uuid: Mapped[str | None] = mapped_column(String(36), nullable=True)
    event_id: Mapped[str] = mapped_column(String(255), nullable=False)
    message_level: Mapped[str] = mapped_column(String(255), nullable=False)
    user_message: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)


class VolumeTypeAccess(Base):
    __tablename__ = "volume_type_projects"
    volume_type_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    project_id: Mapped[str] = mapped_column(String(255), primary_key=True)


class Quota(Base):
    """A per-project limit that overrides the quota class (``default``)."""

    __tablename__ = "quotas"
    project_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    resource: Mapped[str] = mapped_column(String(255), primary_key=True)
    hard_limit: Mapped[int] = mapped_column(BigInteger, nullable=False)


class QuotaClass(Base):
    __tablename__ = "quota_classes"
    class_name: Mapped[str] = mapped_column(String(255), primary_key=True)
    resource: Mapped[str] = mapped_column(String(255), primary_key=True)
    hard_limit: Mapped[int] = mapped_column(BigInteger, nullable=False)


class QuotaLock(Base):
    """One row per project; every quota check updates it first, which serializes the checks
    of one project (row lock on PostgreSQL/MariaDB, the write lock on SQLite), so counting
    usage and claiming more happen atomically."""

    __tablename__ = "volume_quota_locks"
    project_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    generation: Mapped[int] = mapped_column(BigInteger, default=0, nullable=False)


class Backup(Base):
    __tablename__ = "backups"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    volume_id: Mapped[str] = mapped_column(String(36), nullable=False, index=True)
    snapshot_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    project_id: Mapped[str] = mapped_column(String(255), nullable=False)
    user_id: Mapped[str] = mapped_column(String(255), nullable=False)
    name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    status: Mapped[str] = mapped_column(String(30), nullable=False)
    size: Mapped[int] = mapped_column(Integer, nullable=False)
    object_count: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    container: Mapped[str | None] = mapped_column(String(255), nullable=True)
    availability_zone: Mapped[str | None] = mapped_column(String(255), nullable=True)
    host: Mapped[str | None] = mapped_column(String(255), nullable=True)
    fail_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    checksum: Mapped[str | None] = mapped_column(String(128), nullable=True)
    incremental: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    restore_volume_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    meta: Mapped[dict[str, str]] = mapped_column(JSON, default=dict, nullable=False)
    # the volume's own metadata, bootable flag and image metadata, put back on restore
    volume_meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, nullable=False)
    data_timestamp: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)


class Transfer(Base):
    __tablename__ = "transfers"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    volume_id: Mapped[str] = mapped_column(String(36), nullable=False, index=True)
    name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    salt: Mapped[str] = mapped_column(String(255), nullable=False)
    crypt_hash: Mapped[str] = mapped_column(String(255), nullable=False)
    source_project_id: Mapped[str] = mapped_column(String(255), nullable=False)
    destination_project_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    accepted: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    no_snapshots: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)


class Service(Base):
    """A volume/backup/scheduler worker: its heartbeat, and a backend's pool capacity."""

    __tablename__ = "volume_services"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    host: Mapped[str] = mapped_column(String(255), nullable=False)
    binary: Mapped[str] = mapped_column(String(255), nullable=False)
    zone: Mapped[str] = mapped_column(String(255), nullable=False)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    disabled_reason: Mapped[str | None] = mapped_column(String(255), nullable=True)
    frozen: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    capabilities: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    __table_args__ = (Index("ix_volume_services_host_binary", "host", "binary", unique=True),)
