"""Response bodies, shaped per microversion exactly as Nova shapes them (Tempest validates
them against strict schemas: a field too many fails as surely as one missing)."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from fastapi import Request

from stackling.common.timeutils import isotime
from stackling.compute import states
from stackling.compute.api.common import bookmark, links
from stackling.compute.api.microversion import at_least
from stackling.compute.service.flavors import FlavorRecord
from stackling.compute.service.instances import ServerRecord, instance_name
from stackling.compute.service.keypairs import KeyPairRecord

PROGRESS_STATUSES = {"ACTIVE", "BUILD", "REBUILD", "RESIZE", "VERIFY_RESIZE", "MIGRATING"}
FAULT_STATUSES = {"ERROR", "DELETED"}


def nova_time(value: datetime | None) -> str | None:
    """created/updated: ``2026-11-22T01:02:03Z``."""
    return isotime(value, subsecond=False) if value else None


def usage_time(value: datetime | None) -> str | None:
    """OS-SRV-USG and keypair timestamps: ``2026-11-22T01:02:03.000000`` (no zone)."""
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f") if value else None


def host_id(host: str | None, project_id: str) -> str:
    if not host:
        return ""
    return hashlib.sha224((project_id + host).encode()).hexdigest()


# -- servers ----------------------------------------------------------------------------------
def server_basic(request: Request, rec: ServerRecord) -> dict[str, Any]:
    return {"id": rec.row.uuid, "name": rec.row.display_name,
            "links": links(request, "servers", rec.row.uuid)}


def _flavor(request: Request, rec: ServerRecord, extra_specs: bool) -> dict[str, Any]:
    f = rec.row.flavor
    if at_least(request, "2.47"):
        out = {"vcpus": f["vcpus"], "ram": f["memory_mb"], "disk": f.get("root_gb", 0),
               "ephemeral": f.get("ephemeral_gb", 0), "swap": f.get("swap", 0),
               "original_name": f["name"]}
        if extra_specs:
            out["extra_specs"] = dict(f.get("extra_specs") or {})
        return out
    return {"id": str(f["flavorid"]), "links": bookmark(request, "flavors", f["flavorid"])}


def _image(request: Request, rec: ServerRecord) -> dict[str, Any] | str:
    ref = rec.row.image_ref
    if not ref:
        return ""
    return {"id": ref, "links": bookmark(request, "images", ref)}


def _fault(rec: ServerRecord, is_admin: bool) -> dict[str, Any] | None:
    fault = rec.fault
    if fault is None:
        return None
    out: dict[str, Any] = {"code": fault.code, "created": nova_time(fault.created_at),
                           "message": fault.message}
    if fault.details and (is_admin or fault.code != 500):
        out["details"] = fault.details
    return out


def server_detail(request: Request, rec: ServerRecord, *, is_admin: bool,
                  extended: bool, host_status: bool, extra_specs: bool, full: bool = True,
                  server_groups: bool = False, show_user_data: bool = True,
                  keypair: bool | None = None,
                  addresses: dict[str, list[dict[str, Any]]] | None = None) -> dict[str, Any]:
    """The server as show/detail answer it (Nova's ``ViewBuilder.show``). ``full=False``:
    the 2.1-2.74 update (and rebuild) answer, without the extension attributes;
    ``server_groups``: show (2.71+) and update/rebuild add the server's groups."""
    row = rec.row
    status = "DELETED" if row.deleted else states.status_of(row.vm_state, row.task_state)
    s: dict[str, Any] = {
        "accessIPv4": row.access_ip_v4 or "",
        "accessIPv6": row.access_ip_v6 or "",
        "addresses": addresses or {},
        "created": nova_time(row.created_at),
        "flavor": _flavor(request, rec, extra_specs),
        "hostId": host_id(row.host, row.project_id),
        "id": row.uuid,
        "image": _image(request, rec),
        "links": links(request, "servers", row.uuid),
        "metadata": dict(rec.metadata),
        "name": row.display_name,
        "status": status,
        "tenant_id": row.project_id,
        "user_id": row.user_id,
        "updated": nova_time(row.updated_at),
        "OS-DCF:diskConfig": "AUTO" if row.auto_disk_config else "MANUAL",
    }
    if status in FAULT_STATUSES:
        fault = _fault(rec, is_admin)
        if fault:
            s["fault"] = fault
    if status in PROGRESS_STATUSES:
        s["progress"] = row.progress or 0
    if not full:
        extended = host_status = False
    else:
        s["OS-EXT-AZ:availability_zone"] = row.availability_zone or ""
        s["config_drive"] = row.config_drive or ""
        s["OS-SRV-USG:launched_at"] = usage_time(row.launched_at)
        s["OS-SRV-USG:terminated_at"] = usage_time(row.terminated_at)
        if row.security_groups:
            s["security_groups"] = list(row.security_groups)
    if keypair if keypair is not None else full:
        s["key_name"] = row.key_name
    if extended:
        s["OS-EXT-SRV-ATTR:host"] = row.host
        s["OS-EXT-SRV-ATTR:instance_name"] = instance_name(row)
        s["OS-EXT-SRV-ATTR:hypervisor_hostname"] = row.node
        if at_least(request, "2.3"):
            s["OS-EXT-SRV-ATTR:hostname"] = row.hostname
            s["OS-EXT-SRV-ATTR:kernel_id"] = ""
            s["OS-EXT-SRV-ATTR:launch_index"] = row.launch_index
            s["OS-EXT-SRV-ATTR:ramdisk_id"] = ""
            s["OS-EXT-SRV-ATTR:reservation_id"] = row.reservation_id
            s["OS-EXT-SRV-ATTR:root_device_name"] = row.root_device_name
            if show_user_data:
                s["OS-EXT-SRV-ATTR:user_data"] = row.user_data
    if full:
        s["OS-EXT-STS:task_state"] = row.task_state
        s["OS-EXT-STS:vm_state"] = row.vm_state
        s["OS-EXT-STS:power_state"] = row.power_state
        volumes: list[dict[str, Any]] = []
        for volume_id, delete_on_termination in rec.volumes:
            v: dict[str, Any] = {"id": volume_id}
            if at_least(request, "2.3"):
                v["delete_on_termination"] = delete_on_termination
            volumes.append(v)
        s["os-extended-volumes:volumes_attached"] = volumes
    if at_least(request, "2.9"):
        s["locked"] = bool(row.locked)
    if at_least(request, "2.16") and host_status:
        s["host_status"] = rec.host_status
    if at_least(request, "2.19"):
        s["description"] = row.display_description
    if at_least(request, "2.26"):
        s["tags"] = list(rec.tags)
    if at_least(request, "2.63"):
        s["trusted_image_certificates"] = None
    if server_groups:
        s["server_groups"] = list(rec.groups)
    if at_least(request, "2.73"):
        s["locked_reason"] = row.locked_reason
    if at_least(request, "2.90") and not extended:
        s["OS-EXT-SRV-ATTR:hostname"] = row.hostname
    if full and at_least(request, "2.96"):
        s["pinned_availability_zone"] = rec.pinned_zone
    return s


def server_created(request: Request, uuid: str, admin_password: str | None,
                   security_groups: list[str]) -> dict[str, Any]:
    s: dict[str, Any] = {"id": uuid, "links": links(request, "servers", uuid),
                         "OS-DCF:diskConfig": "MANUAL",
                         "security_groups": [{"name": n} for n in security_groups or
                                             ["default"]]}
    if admin_password is not None:
        s["adminPass"] = admin_password
    return s


# -- flavors ----------------------------------------------------------------------------------
def flavor_basic(request: Request, f: FlavorRecord) -> dict[str, Any]:
    out: dict[str, Any] = {"id": f.flavorid, "name": f.name,
                           "links": links(request, "flavors", f.flavorid)}
    if at_least(request, "2.55"):
        out["description"] = f.description
    return out


def flavor_detail(request: Request, f: FlavorRecord, extra_specs: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": f.flavorid, "name": f.name, "ram": f.memory_mb, "disk": f.root_gb,
        "swap": f.swap or "", "OS-FLV-EXT-DATA:ephemeral": f.ephemeral_gb,
        "OS-FLV-DISABLED:disabled": f.disabled, "vcpus": f.vcpus,
        "os-flavor-access:is_public": f.is_public, "rxtx_factor": f.rxtx_factor or "",
        "links": links(request, "flavors", f.flavorid),
    }
    if at_least(request, "2.55"):
        out["description"] = f.description
    if extra_specs:
        out["extra_specs"] = dict(f.extra_specs)
    if at_least(request, "2.75"):
        out["swap"] = f.swap or 0
    return out


# -- keypairs ---------------------------------------------------------------------------------
def keypair_basic(request: Request, k: KeyPairRecord) -> dict[str, Any]:
    out: dict[str, Any] = {"name": k.name, "public_key": k.public_key,
                           "fingerprint": k.fingerprint}
    if at_least(request, "2.2"):
        out["type"] = k.type
    return out


def keypair_show(request: Request, k: KeyPairRecord) -> dict[str, Any]:
    out = keypair_basic(request, k)
    out.update({"user_id": k.user_id, "created_at": usage_time(k.created_at),
                "deleted": False, "deleted_at": None, "updated_at": None, "id": k.id})
    return out


def keypair_created(request: Request, k: KeyPairRecord) -> dict[str, Any]:
    out = keypair_basic(request, k)
    out["user_id"] = k.user_id
    if k.private_key is not None:
        out["private_key"] = k.private_key
    return out
