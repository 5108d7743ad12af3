"""Cinder's response shapes, per microversion (Tempest's schemas reject extra fields)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import Request

from stackling.common.context import RequestContext
from stackling.common.timeutils import as_aware
from stackling.volume.api.common import links
from stackling.volume.api.microversion import at_least
from stackling.volume.models import Attachment, Backup, Snapshot, Transfer, Volume, VolumeType


def ts(value: datetime | None) -> str | None:
    if value is None:
        return None
    return as_aware(value).strftime("%Y-%m-%dT%H:%M:%S.%f")


def attachment_summary(att: Attachment) -> dict[str, Any]:
    return {"server_id": att.instance_uuid, "attachment_id": att.id,
            "attached_at": ts(att.attach_time), "host_name": att.attached_host,
            "volume_id": att.volume_id, "device": att.mountpoint, "id": att.volume_id}


def volume(request: Request, ctx: RequestContext, row: Volume, types: dict[str, str],
           attachments: list[Attachment], *, created: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": row.id, "name": row.name, "description": row.description, "size": row.size,
        "status": row.status, "availability_zone": row.availability_zone,
        "created_at": ts(row.created_at), "updated_at": ts(row.updated_at),
        "attachments": [attachment_summary(a) for a in attachments],
        "links": links(request, "volumes", row.id), "encrypted": False,
        "replication_status": None, "snapshot_id": row.snapshot_id,
        "source_volid": row.source_volid, "user_id": row.user_id,
        "metadata": {**row.meta, **{k: v for k, v in row.admin_meta.items()
                                    if k in ("readonly", "attached_mode")}},
        "multiattach": row.multiattach, "consistencygroup_id": None,
        "bootable": "true" if row.bootable else "false",
        "volume_type": types.get(row.volume_type_id or ""),
        "migration_status": row.migration_status,
    }
    if at_least(request, "3.13"):
        out["group_id"] = row.group_id
    if at_least(request, "3.21"):
        out["provider_id"] = None
    if at_least(request, "3.48"):
        out["shared_targets"] = False
        out["service_uuid"] = None
    if at_least(request, "3.63"):
        out["volume_type_id"] = row.volume_type_id
    if at_least(request, "3.64"):
        out["encryption_key_id"] = None
    if at_least(request, "3.65"):
        out["consumes_quota"] = True
    if created:
        return out
    out["os-vol-tenant-attr:tenant_id"] = row.project_id
    if row.image_meta:
        out["volume_image_metadata"] = dict(row.image_meta)
    if ctx.is_admin:
        out["os-vol-host-attr:host"] = row.host
        out["os-vol-mig-status-attr:migstat"] = row.migration_status
        out["os-vol-mig-status-attr:name_id"] = None
        if at_least(request, "3.61"):
            out["cluster_name"] = None
    return out


def volume_brief(request: Request, row: Volume) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "links": links(request, "volumes", row.id)}


def snapshot(request: Request, ctx: RequestContext, row: Snapshot,
             detail: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": row.id, "name": row.name, "description": row.description,
        "status": row.status, "size": row.size, "volume_id": row.volume_id,
        "created_at": ts(row.created_at), "updated_at": ts(row.updated_at),
        "metadata": dict(row.meta),
    }
    if detail:
        out["os-extended-snapshot-attributes:progress"] = row.progress
        out["os-extended-snapshot-attributes:project_id"] = row.project_id
    if at_least(request, "3.14"):
        out["group_snapshot_id"] = row.group_snapshot_id
    if at_least(request, "3.41"):
        out["user_id"] = row.user_id
    if at_least(request, "3.65"):
        out["consumes_quota"] = True
    return out


def volume_type(request: Request, ctx: RequestContext, row: VolumeType,
                created: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"id": row.id, "name": row.name, "description": row.description,
                           "is_public": row.is_public,
                           "os-volume-type-access:is_public": row.is_public}
    if not created:  # create and update answer without it (Cinder's view)
        out["qos_specs_id"] = row.qos_specs_id
    if ctx.is_admin:
        out["extra_specs"] = dict(row.extra_specs)
    else:  # Cinder shows users only the specs they may know (multiattach, RESKEY:...)
        out["extra_specs"] = {k: v for k, v in row.extra_specs.items()
                              if k in ("multiattach", "RESKEY:availability_zones",
                                       "replication_enabled")}
    return out


def backup(request: Request, ctx: RequestContext, row: Backup) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": row.id, "name": row.name, "description": row.description,
        "status": row.status, "size": row.size, "volume_id": row.volume_id,
        "snapshot_id": row.snapshot_id, "object_count": row.object_count,
        "container": row.container, "availability_zone": row.availability_zone,
        "fail_reason": row.fail_reason, "created_at": ts(row.created_at),
        "updated_at": ts(row.updated_at), "data_timestamp": ts(row.data_timestamp),
        "is_incremental": row.incremental, "has_dependent_backups": False,
        "links": links(request, "backups", row.id),
    }
    if at_least(request, "3.18"):
        out["os-backup-project-attr:project_id"] = row.project_id
    if at_least(request, "3.43"):
        out["metadata"] = dict(row.meta)
    if at_least(request, "3.56"):
        out["user_id"] = row.user_id
    return out


def backup_brief(request: Request, row: Backup) -> dict[str, Any]:
    return {"id": row.id, "name": row.name, "links": links(request, "backups", row.id)}


def transfer(request: Request, row: Transfer, detail: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {"id": row.id, "name": row.name, "volume_id": row.volume_id,
                           "links": links(request, "os-volume-transfer", row.id)}
    if detail:
        out["created_at"] = ts(row.created_at)
    if at_least(request, "3.55"):
        out["no_snapshots"] = row.no_snapshots
    if at_least(request, "3.57") and detail:
        out["destination_project_id"] = row.destination_project_id
        out["source_project_id"] = row.source_project_id
        out["accepted"] = row.accepted
    return out


def attachment(row: Attachment, status_of_volume: str | None = None,
               detail: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {"id": row.id, "status": row.attach_status,
                           "instance": row.instance_uuid, "volume_id": row.volume_id}
    if detail:
        out.update({"attached_at": ts(row.attach_time), "detached_at": ts(row.detach_time),
                    "attach_mode": row.attach_mode,
                    "connection_info": row.connection_info or {}})
    return out
