"""``/v2.1/extensions``: the v2.0-era extension list (v2.1 has no extensions; Nova still
answers with the names clients used to probe for)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from stackling.common.errors import NotFound
from stackling.compute.api.common import caller
from stackling.web.responses import JSONResponse

router = APIRouter(prefix="/v2.1/extensions")

_EXTENSIONS = [
    ("Consoles", "os-consoles"), ("ConsoleOutput", "os-console-output"),
    ("ExtendedServerAttributes", "OS-EXT-SRV-ATTR"), ("ExtendedStatus", "OS-EXT-STS"),
    ("ExtendedAvailabilityZone", "OS-EXT-AZ"), ("DiskConfig", "OS-DCF"),
    ("ServerUsage", "OS-SRV-USG"), ("FlavorAccess", "os-flavor-access"),
    ("FlavorExtraSpecs", "os-flavor-extra-specs"), ("FlavorManage", "os-flavor-manage"),
    ("FlavorExtraData", "OS-FLV-EXT-DATA"), ("FlavorDisabled", "OS-FLV-DISABLED"),
    ("Keypairs", "os-keypairs"), ("Hosts", "os-hosts"), ("Hypervisors", "os-hypervisors"),
    ("Services", "os-services"), ("AvailabilityZone", "os-availability-zone"),
    ("Aggregates", "os-aggregates"), ("Quotas", "os-quota-sets"),
    ("QuotaClasses", "os-quota-class-sets"), ("ServerGroups", "os-server-groups"),
    ("ServerMetadata", "server-metadata"), ("InstanceActions", "os-instance-actions"),
    ("Limits", "limits"), ("AdminActions", "os-admin-actions"),
    ("LockServer", "os-lock-server"), ("PauseServer", "os-pause-server"),
    ("SuspendServer", "os-suspend-server"), ("ServerExternalEvents",
                                             "os-server-external-events"),
    ("SimpleTenantUsage", "os-simple-tenant-usage"), ("Migrations", "os-migrations"),
    ("ServerDiagnostics", "os-server-diagnostics"),
    ("AssistedVolumeSnapshots", "os-assisted-volume-snapshots"),
]


def _view(name: str, alias: str) -> dict[str, Any]:
    return {"name": name, "alias": alias, "namespace": f"http://docs.openstack.org/compute/"
            f"ext/{alias}/api/v2.1", "description": f"{name} support.",
            "updated": "2014-12-03T00:00:00Z", "links": []}


@router.get("")
async def list_extensions(request: Request) -> JSONResponse:
    await caller(request)
    return JSONResponse({"extensions": [_view(n, a) for n, a in _EXTENSIONS]})


@router.get("/{alias}")
async def show_extension(request: Request, alias: str) -> JSONResponse:
    await caller(request)
    for name, known in _EXTENSIONS:
        if known == alias:
            return JSONResponse({"extension": _view(name, known)})
    raise NotFound("The resource could not be found.")
