"""Image service tables (Glance's data model, in the image service's own MetaData).

Images are soft-deleted, as in Glance: a deleted image keeps its row (``deleted`` set, status
``deleted``) so its id can never be reused, and every query skips it. ``revision`` grows with
every change of an image row; updates are compare-and-swap on it (or on ``status``), so two
concurrent changes cannot both win.

An image's data lives in one store: ``store`` names it and ``location`` is the store's own
reference. ``staged`` is the location of data staged for a ``glance-direct`` import.
``reserved`` counts bytes an upload in progress has claimed against the owner's
``image_size_total`` / ``image_stage_total`` quota.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from stackling.db.base import UTCDateTime, make_metadata


class Base(DeclarativeBase):
    metadata = make_metadata()


class Image(Base):
    __tablename__ = "images"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    status: Mapped[str] = mapped_column(String(30), nullable=False)
    visibility: Mapped[str] = mapped_column(String(10), nullable=False)
    owner: Mapped[str | None] = mapped_column(String(255), nullable=True)
    disk_format: Mapped[str | None] = mapped_column(String(20), nullable=True)
    container_format: Mapped[str | None] = mapped_column(String(20), nullable=True)
    size: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    virtual_size: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    checksum: Mapped[str | None] = mapped_column(String(32), nullable=True)
    os_hash_algo: Mapped[str | None] = mapped_column(String(64), nullable=True)
    os_hash_value: Mapped[str | None] = mapped_column(String(128), nullable=True)
    min_disk: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    min_ram: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    protected: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    os_hidden: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    store: Mapped[str | None] = mapped_column(String(255), nullable=True)
    location: Mapped[str | None] = mapped_column(Text, nullable=True)
    staged: Mapped[str | None] = mapped_column(Text, nullable=True)  # staging location
    reserved: Mapped[int] = mapped_column(BigInteger, default=0, nullable=False)
    revision: Mapped[int] = mapped_column(Integer, default=1, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)

    __table_args__ = (
        Index("ix_images_owner_deleted", "owner", "deleted"),
        Index("ix_images_visibility_deleted", "visibility", "deleted"),
        Index("ix_images_created_at_id", "created_at", "id"),
        Index("ix_images_status", "status"),
        Index("ix_images_os_hash_value", "os_hash_value"),
    )


class ImageProperty(Base):
    """A custom (extra) property: a string (Glance's schema), or null for the few custom
    properties whose schema allows it (``kernel_id``, ``ramdisk_id``)."""

    __tablename__ = "image_properties"
    image_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("images.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[str | None] = mapped_column(Text, nullable=True)

    __table_args__ = (Index("ix_image_properties_name", "name"),)


class ImageTag(Base):
    __tablename__ = "image_tags"
    image_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("images.id", ondelete="CASCADE"), primary_key=True)
    value: Mapped[str] = mapped_column(String(255), primary_key=True)

    __table_args__ = (Index("ix_image_tags_value", "value"),)


class ImageMember(Base):
    __tablename__ = "image_members"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    image_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("images.id", ondelete="CASCADE"), nullable=False)
    member: Mapped[str] = mapped_column(String(255), nullable=False)
    status: Mapped[str] = mapped_column(String(20), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)

    __table_args__ = (
        UniqueConstraint("image_id", "member"),
        Index("ix_image_members_member_status", "member", "status"),
    )


class QuotaLock(Base):
    """One row per project; a quota check updates it first, which serializes the checks of
    one project on every database (row lock on PostgreSQL/MariaDB, the write lock on SQLite),
    so counting usage and claiming more happen atomically."""

    __tablename__ = "image_quota_locks"
    project_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    generation: Mapped[int] = mapped_column(BigInteger, default=0, nullable=False)


class Task(Base):
    """Glance tasks: ``api_image_import`` (from ``POST /v2/images/{id}/import``) and the
    legacy ``import`` tasks of ``POST /v2/tasks``."""

    __tablename__ = "tasks"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    type: Mapped[str] = mapped_column(String(30), nullable=False)
    status: Mapped[str] = mapped_column(String(30), nullable=False)
    owner: Mapped[str | None] = mapped_column(String(255), nullable=True)
    image_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    request_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    user_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    input: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, nullable=False)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    message: Mapped[str] = mapped_column(Text, default="", nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


# --- metadata definitions (metadefs) -------------------------------------------------------


class MetadefNamespace(Base):
    __tablename__ = "metadef_namespaces"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    namespace: Mapped[str] = mapped_column(String(80), nullable=False, unique=True)
    display_name: Mapped[str | None] = mapped_column(String(80), nullable=True)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    visibility: Mapped[str] = mapped_column(String(32), nullable=False)
    protected: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    owner: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)


class MetadefResourceType(Base):
    __tablename__ = "metadef_resource_types"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(80), nullable=False, unique=True)
    protected: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)


class MetadefResourceTypeAssociation(Base):
    __tablename__ = "metadef_namespace_resource_types"
    namespace_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("metadef_namespaces.id", ondelete="CASCADE"), primary_key=True)
    resource_type_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("metadef_resource_types.id", ondelete="CASCADE"),
        primary_key=True)
    properties_target: Mapped[str | None] = mapped_column(String(80), nullable=True)
    prefix: Mapped[str | None] = mapped_column(String(80), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)


class MetadefObject(Base):
    __tablename__ = "metadef_objects"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    namespace_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("metadef_namespaces.id", ondelete="CASCADE"), nullable=False)
    name: Mapped[str] = mapped_column(String(80), nullable=False)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    required: Mapped[list[str]] = mapped_column(JSON, default=list, nullable=False)
    properties: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)

    __table_args__ = (UniqueConstraint("namespace_id", "name"),)


class MetadefProperty(Base):
    __tablename__ = "metadef_properties"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    namespace_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("metadef_namespaces.id", ondelete="CASCADE"), nullable=False)
    name: Mapped[str] = mapped_column(String(80), nullable=False)
    schema: Mapped[dict[str, Any]] = mapped_column("json_schema", JSON, default=dict,
                                                   nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)

    __table_args__ = (UniqueConstraint("namespace_id", "name"),)


class MetadefTag(Base):
    __tablename__ = "metadef_tags"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    namespace_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("metadef_namespaces.id", ondelete="CASCADE"), nullable=False)
    name: Mapped[str] = mapped_column(String(80), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)

    __table_args__ = (UniqueConstraint("namespace_id", "name"),)
