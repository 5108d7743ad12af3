"""Server create: flow step 4 (DESIGN.md §1).

:func:`create_servers` checks the request against the flavor, the image (over REST, with
the caller's own token, so they only boot what they may see), the keypair, the zone and the
server group; counts quota under the project's lock; writes the instances
(``vm_state=building``, ``task_state=scheduling``) with their request specs; and casts
:class:`~stackling.compute.rpcapi.ScheduleInstances` to the scheduler (flow step 5).
"""

from __future__ import annotations

import logging
import re
import secrets
import string
from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy import func, insert, select

from stackling.clients.image import Image
from stackling.common.context import RequestContext
from stackling.common.errors import BadRequest, Forbidden, NotFound, StacklingError
from stackling.common.ids import new_uuid
from stackling.common.timeutils import utcnow
from stackling.compute import states
from stackling.compute.models import (
    BlockDeviceMapping,
    Instance,
    InstanceFault,
    InstanceMetadata,
    InstanceTag,
    ServerGroup,
    ServerGroupMember,
)
from stackling.compute.models import (
    RequestSpec as RequestSpecRow,
)
from stackling.compute.rpcapi import RequestSpec
from stackling.compute.service import (
    boot_volumes,
    flavors,
    hosts,
    instance_actions,
    keypairs,
    quotas,
    requested_networks,
)
from stackling.compute.service.compute import ComputeService
from stackling.compute.service.instances import compare_and_swap
from stackling.db.base import table_of

log = logging.getLogger("stackling.compute.create")

_UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?"
                      r"[0-9a-fA-F]{12}$")


def is_uuid(value: str) -> bool:
    return bool(_UUID_RE.match(value))


@dataclass
class BlockDevice:
    source_type: str
    destination_type: str
    boot_index: int | None = None
    uuid: str | None = None
    volume_size: int | None = None
    delete_on_termination: bool = False
    device_name: str | None = None
    guest_format: str | None = None
    disk_bus: str | None = None
    device_type: str | None = None
    volume_type: str | None = None
    tag: str | None = None


@dataclass
class CreateRequest:
    """A validated ``POST /servers`` body (the API layer checks shapes and types)."""

    name: str
    flavor_ref: str
    image_ref: str = ""
    min_count: int = 1
    max_count: int = 1
    key_name: str | None = None
    user_data: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    description: str | None = None
    tags: list[str] = field(default_factory=list)
    security_groups: list[str] = field(default_factory=list)
    availability_zone: str | None = None
    scheduler_hints: dict[str, Any] = field(default_factory=dict)
    networks: str | list[dict[str, Any]] | None = None  # "auto", "none" or explicit ones
    access_ip_v4: str | None = None
    access_ip_v6: str | None = None
    config_drive: bool = False
    auto_disk_config: bool = False
    admin_password: str | None = None
    block_devices: list[BlockDevice] = field(default_factory=list)
    hostname: str | None = None
    requested_host: str | None = None
    requested_node: str | None = None


@dataclass
class CreateResult:
    reservation_id: str
    uuids: list[str]
    admin_password: str | None


def sanitize_hostname(name: str, default: str) -> str:
    """Nova's ``sanitize_hostname``: what a display name becomes as a guest hostname."""
    host = name.encode("latin-1", "ignore").decode("latin-1")[:63]
    host = re.sub(r"[ _.]", "-", host)
    host = re.sub(r"[^\w.-]+", "", host).lower().strip(".-")
    return host or default


def new_password(length: int = 12) -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(length))


def _reservation_id() -> str:
    alphabet = string.ascii_lowercase + string.digits
    return "r-" + "".join(secrets.choice(alphabet) for _ in range(8))


async def image_for(svc: ComputeService, ctx: RequestContext, image_ref: str,
                    missing: str | None = None) -> Image:
    """The image as the caller sees it, active (400 otherwise)."""
    assert svc.images is not None
    image_id = image_ref.rstrip("/").rsplit("/", 1)[-1]
    if not is_uuid(image_id):
        raise BadRequest("Invalid imageRef provided.")
    try:
        image = await svc.images.get(image_id, token=ctx.token)
    except NotFound as exc:
        raise BadRequest(missing or f"Image {image_id} could not be found.") from exc
    if image.status != "active":
        raise BadRequest(f"Image {image_id} is not active.")
    return image


def check_image_fits(flavor: flavors.FlavorRecord, image: Image) -> None:
    if image.min_ram and flavor.memory_mb < image.min_ram:
        raise BadRequest("Flavor's memory is too small for requested image.")
    if flavor.root_gb:
        if image.min_disk and flavor.root_gb < image.min_disk:
            raise BadRequest("Flavor's disk is too small for requested image.")
        if image.size and image.size > flavor.root_gb * 1024 ** 3:
            raise BadRequest(
                "Flavor's disk is too small for requested image. Flavor disk is "
                f"{flavor.root_gb * 1024 ** 3} bytes, image is {image.size} bytes.")


def _parse_zone(svc: ComputeService, ctx: RequestContext, req: CreateRequest
                ) -> tuple[str | None, str | None, str | None]:
    """``zone[:host[:node]]`` (the host part is for admins) -> (zone, host, node)."""
    zone = req.availability_zone
    host = req.requested_host
    node = req.requested_node
    if zone and ":" in zone:
        parts = zone.split(":")
        if len(parts) > 3:
            raise BadRequest("Unable to parse availability_zone")
        zone = parts[0] or None
        forced_host = parts[1] if len(parts) > 1 and parts[1] else None
        forced_node = parts[2] if len(parts) > 2 and parts[2] else None
        if (forced_host or forced_node) and not ctx.is_admin:
            raise Forbidden("Policy doesn't allow os_compute_api:servers:create:forced_host "
                            "to be performed.")
        host = forced_host or host
        node = forced_node or node
    return zone, host, node


async def _check_zone(svc: ComputeService, zone: str) -> None:
    """The zone must hold at least one compute host (Nova lists only such zones)."""
    async with svc.store.read() as session:
        default = svc.conf.default_availability_zone
        placed = await hosts.host_zones(session, default)
        zones = {placed.get(host, default) for host in await hosts.service_states(session)}
    if zone not in zones:
        raise BadRequest("The requested availability zone is not available")


async def _group(svc: ComputeService, ctx: RequestContext,
                 hints: dict[str, Any]) -> ServerGroup | None:
    group_id = hints.get("group")
    if group_id is None:
        return None
    if isinstance(group_id, list):
        group_id = group_id[0] if group_id else None
    async with svc.store.read() as session:
        group = (await session.execute(select(ServerGroup).where(
            ServerGroup.uuid == str(group_id)))).scalar_one_or_none()
    if group is None or (group.project_id != ctx.project_id and not ctx.is_admin):
        raise BadRequest(f"Invalid server group: {group_id} could not be found.")
    return group


def _block_devices(req: CreateRequest, image_id: str | None) -> list[BlockDevice]:
    devices = list(req.block_devices)
    boot_volumes.check(devices, req.max_count)
    if image_id and not any(bd.boot_index == 0 for bd in devices):
        devices.insert(0, BlockDevice("image", "local", 0, image_id,
                                      delete_on_termination=True))
    return devices


# a server's records, written with prebuilt Core inserts (no ORM objects, no flush)
_NEW_INSTANCE: Final = insert(table_of(Instance))
_NEW_METADATA: Final = insert(table_of(InstanceMetadata))
_NEW_TAG: Final = insert(table_of(InstanceTag))
_NEW_BDM: Final = insert(table_of(BlockDeviceMapping))
_NEW_MEMBER: Final = insert(table_of(ServerGroupMember))
_NEW_SPEC: Final = insert(table_of(RequestSpecRow))


async def create_servers(svc: ComputeService, ctx: RequestContext,
                         req: CreateRequest) -> CreateResult:
    """Flow step 4: check, record (building/scheduling) and cast to the scheduler."""
    # -- what the request refers to ----------------------------------------------------------
    try:
        flavor = await flavors.get(svc.store, ctx, req.flavor_ref)
    except NotFound as exc:
        raise BadRequest("Invalid flavorRef provided.") from exc
    if flavor.disabled:
        raise BadRequest("Invalid flavorRef provided.")
    boot_volume = any(bd.boot_index == 0 and bd.source_type != "image"
                      for bd in req.block_devices)
    image: Image | None = None
    if req.image_ref:
        image = await image_for(svc, ctx, req.image_ref)
        check_image_fits(flavor, image)
    elif not boot_volume:
        if not any(bd.boot_index == 0 for bd in req.block_devices):
            raise BadRequest("Invalid imageRef provided.")
        image_bd = next(bd for bd in req.block_devices if bd.boot_index == 0)
        if image_bd.source_type == "image" and image_bd.uuid:
            image = await image_for(svc, ctx, image_bd.uuid)
            check_image_fits(flavor, image)
    devices = _block_devices(req, image.id if image else None)
    await boot_volumes.check_volumes(svc, ctx, devices)
    key_data = None
    if req.key_name is not None:
        try:
            key_data = (await keypairs.get(svc.store, ctx.user_id or "", req.key_name)
                        ).public_key
        except NotFound as exc:
            raise BadRequest("Invalid key_name provided.") from exc
    zone, forced_host, forced_node = _parse_zone(svc, ctx, req)
    if zone is not None:
        await _check_zone(svc, zone)
    group = await _group(svc, ctx, req.scheduler_hints)
    ports = await requested_networks.resolve(svc.network, ctx, req.networks, req.max_count,
                                             security_groups=req.security_groups)
    # -- quota, then the records, in one transaction under the project's lock ----------------
    project_id = ctx.project_id or ""
    admin_password = req.admin_password
    if admin_password is None and svc.conf.enable_instance_password:
        admin_password = new_password()
    reservation_id = _reservation_id()
    await quotas.ensure_lock(svc.store, project_id)
    info = flavor.info()
    specs: list[RequestSpec] = []
    async with svc.store.write() as session:
        await quotas.lock(session, project_id)
        limits = await quotas.limits_for(session, project_id, svc.conf.quotas)
        if len(req.metadata) > limits["metadata_items"] >= 0:
            raise Forbidden("Quota exceeded for metadata_items: Requested "
                            f"{len(req.metadata)}, but already used 0 of "
                            f"{limits['metadata_items']} metadata_items")
        used = await quotas.usage(session, project_id, groups=False)
        count = _allowed_count(req, limits, used, flavor)
        if group is not None and limits["server_group_members"] >= 0:
            members = (await session.execute(select(func.count()).select_from(
                ServerGroupMember).where(ServerGroupMember.group_id == group.id))).scalar_one()
            if members + count > limits["server_group_members"]:
                raise Forbidden("Quota exceeded, too many servers in group")
        now = utcnow()
        for index in range(count):
            uuid = new_uuid()
            name = req.name if count == 1 and req.max_count == 1 else f"{req.name}-{index + 1}"
            hostname = (req.hostname if req.hostname else
                        sanitize_hostname(name, f"server-{uuid}"))
            image_ref = image.id if image and req.image_ref else ""
            await session.execute(_NEW_INSTANCE, dict(
                uuid=uuid, project_id=project_id, user_id=ctx.user_id or "",
                display_name=name, display_description=req.description, hostname=hostname,
                reservation_id=reservation_id, launch_index=index,
                availability_zone=zone, vm_state=states.BUILDING,
                task_state=states.Task.SCHEDULING, power_state=states.NOSTATE,
                flavor=info.model_dump(), vcpus=flavor.vcpus, memory_mb=flavor.memory_mb,
                root_gb=flavor.root_gb, ephemeral_gb=flavor.ephemeral_gb,
                image_ref=image_ref, key_name=req.key_name,
                key_data=key_data, user_data=req.user_data,
                config_drive="True" if req.config_drive else "",
                auto_disk_config=req.auto_disk_config, access_ip_v4=req.access_ip_v4,
                access_ip_v6=req.access_ip_v6, root_device_name="/dev/vda",
                security_groups=[{"name": n} for n in (req.security_groups or ["default"])],
                system_metadata=_image_properties(image), created_at=now, updated_at=now))
            if req.metadata:
                await session.execute(_NEW_METADATA, [
                    {"instance_uuid": uuid, "key": key, "value": value}
                    for key, value in req.metadata.items()])
            if req.tags:
                await session.execute(_NEW_TAG, [{"instance_uuid": uuid, "tag": tag}
                                                 for tag in dict.fromkeys(req.tags)])
            for bd in devices:
                await session.execute(_NEW_BDM, dict(
                    uuid=new_uuid(), instance_uuid=uuid, source_type=bd.source_type,
                    destination_type=bd.destination_type, boot_index=bd.boot_index,
                    device_name=bd.device_name, image_id=bd.uuid if bd.source_type == "image"
                    else None, volume_id=bd.uuid if bd.source_type == "volume" else None,
                    volume_size=bd.volume_size,
                    delete_on_termination=bd.delete_on_termination,
                    guest_format=bd.guest_format, disk_bus=bd.disk_bus,
                    device_type=bd.device_type, volume_type=bd.volume_type, tag=bd.tag))
            if group is not None:
                await session.execute(_NEW_MEMBER, {"group_id": group.id,
                                                    "instance_uuid": uuid})
            spec = RequestSpec(
                instance_uuid=uuid, project_id=project_id, user_id=ctx.user_id or "",
                flavor=info, image_ref=image_ref, availability_zone=zone,
                group_uuid=group.uuid if group else None,
                group_policy=group.policy if group else None,
                group_rules=dict(group.rules) if group else {},
                scheduler_hints=dict(req.scheduler_hints), requested_host=forced_host,
                requested_node=forced_node, image=_image_meta(image) if image_ref
                else None, requested_networks=ports)
            await session.execute(_NEW_SPEC, {"instance_uuid": uuid, "spec": {
                **spec.model_dump(), "networks": req.networks}})
            await instance_actions.record(session, ctx, uuid, "create")
            specs.append(spec)
    uuids = [s.instance_uuid for s in specs]
    if any(bd.destination_type == "volume" for bd in devices):
        specs = await _with_volumes(svc, ctx, specs)
    # -- flow step 4 -> 5: hand the placement decision to the scheduler -----------------------
    try:
        await svc.scheduler.schedule_instances(specs, ctx.request_id, context=ctx)
    except StacklingError as exc:
        log.error("cannot reach the scheduler: %s", exc)
        await _fail_all(svc, [s.instance_uuid for s in specs],
                        "The scheduler could not be reached; the server was not built.")
    return CreateResult(reservation_id, uuids, admin_password)


async def _with_volumes(svc: ComputeService, ctx: RequestContext,
                        specs: list[RequestSpec]) -> list[RequestSpec]:
    """Make and reserve each server's volumes (boot_volumes); a server whose volumes
    cannot be made goes to ERROR with the reason, the others go on."""
    ready: list[RequestSpec] = []
    for spec in specs:
        try:
            devices = await boot_volumes.provision(svc, ctx, spec.instance_uuid)
        except (StacklingError, TimeoutError) as exc:
            text = exc.message if isinstance(exc, StacklingError) else str(exc)
            await _fail_all(svc, [spec.instance_uuid],
                            f"Build of instance {spec.instance_uuid} aborted: {text}")
            continue
        ready.append(spec.model_copy(update={"block_devices": devices}) if devices
                     else spec)
    return ready


def _allowed_count(req: CreateRequest, limits: dict[str, int], used: dict[str, int],
                   flavor: flavors.FlavorRecord) -> int:
    """As many servers as asked (up to max_count) as quota allows, at least min_count."""
    per = {"instances": 1, "cores": flavor.vcpus, "ram": flavor.memory_mb}
    room = req.max_count
    for resource, amount in per.items():
        limit = limits[resource]
        if limit >= 0 and amount > 0:
            room = min(room, max(0, (limit - used.get(resource, 0)) // amount))
    if room < req.min_count:
        quotas.check(limits, used, {r: a * req.min_count for r, a in per.items()})
    return max(room, req.min_count)


def _image_meta(image: Image | None) -> dict[str, Any] | None:
    """What the agent builds from (RequestSpec.image)."""
    if image is None:
        return None
    return {"id": image.id, "name": image.name, "disk_format": image.disk_format,
            "container_format": image.container_format, "size": image.size,
            "min_ram": image.min_ram, "min_disk": image.min_disk,
            "properties": dict(image.properties)}


def _image_properties(image: Image | None) -> dict[str, Any]:
    if image is None:
        return {}
    props = {f"image_{k}": str(v) for k, v in image.properties.items()
             if isinstance(v, str | int | float | bool)}
    props.update({"image_min_ram": str(image.min_ram), "image_min_disk": str(image.min_disk),
                  "image_disk_format": image.disk_format or "",
                  "image_container_format": image.container_format or "",
                  "image_base_image_ref": image.id})
    return props


async def _fail_all(svc: ComputeService, uuids: list[str], message: str) -> None:
    async with svc.store.write() as session:
        for uuid in uuids:
            if await compare_and_swap(session, uuid, {"vm_state": states.ERROR,
                                                      "task_state": None},
                                      task_states=[states.Task.SCHEDULING]):
                session.add(InstanceFault(instance_uuid=uuid, code=500, message=message))
