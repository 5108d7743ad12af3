"""Parsing and checking ``POST /servers`` bodies (Nova's create schema per microversion)."""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
from typing import Any

from fastapi import Request

from stackling.compute.api.common import boolean, invalid, no_extra, obj, required, string
from stackling.compute.api.microversion import at_least
from stackling.compute.service.create import BlockDevice, CreateRequest

METADATA_KEY_RE = re.compile(r"^[a-zA-Z0-9-_:. ]{1,255}$")
HOSTNAME_RE = re.compile(r"^[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?"
                         r"(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$")


def metadata(value: Any, field: str = "metadata") -> dict[str, str]:
    if not isinstance(value, dict):
        raise invalid(field, value, f"{value!r} is not of type 'object'")
    out: dict[str, str] = {}
    for key, item in value.items():
        if not METADATA_KEY_RE.match(key):
            raise invalid(field, key, "Additional properties are not allowed "
                                      f"({key!r} does not match any of the regexes)")
        if not isinstance(item, str):
            raise invalid(f"{field}/{key}", item, f"{item!r} is not of type 'string'")
        if len(item) > 255:
            raise invalid(f"{field}/{key}", item, f"{item!r} is too long")
        out[key] = item
    return out


def tags(value: Any) -> list[str]:
    if not isinstance(value, list) or len(value) > 50:
        raise invalid("tags", value, "is not an array of at most 50 tags")
    for tag in value:
        if (not isinstance(tag, str) or not 1 <= len(tag) <= 60 or "/" in tag or ","
                in tag):
            raise invalid("tags", tag, "is not a valid tag")
    return list(value)


def _count(server: dict[str, Any], key: str) -> int:
    value = server.get(key, 1)
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise invalid(key, value, f"{value!r} is not a positive integer")
    return value


def ip_address(server: dict[str, Any], key: str, version: int) -> str | None:
    value = server.get(key)
    if value is None:
        return None
    try:
        address = ipaddress.ip_address(value) if isinstance(value, str) else None
    except ValueError:
        address = None
    if address is None or address.version != version:
        raise invalid(key, value, f"{value!r} is not a 'ipv{version}'")
    return str(address)


def _networks(request: Request, server: dict[str, Any]) -> str | list[dict[str, Any]] | None:
    if "networks" not in server:
        if at_least(request, "2.37"):
            raise invalid("server", server, "'networks' is a required property")
        return None
    value = server["networks"]
    if isinstance(value, str):
        if value in ("auto", "none") and at_least(request, "2.37"):
            return value
        raise invalid("networks", value, f"{value!r} is not of type 'array'")
    if not isinstance(value, list):
        raise invalid("networks", value, f"{value!r} is not of type 'array'")
    allowed = {"fixed_ip", "port", "uuid"} | ({"tag"} if at_least(request, "2.32") else set())
    for item in value:
        if not isinstance(item, dict):
            raise invalid("networks", item, "is not of type 'object'")
        no_extra(item, allowed, "networks")
    return value


SOURCE_TYPES = ("volume", "image", "snapshot", "blank")
DESTINATION_TYPES = ("local", "volume")


def _block_devices(request: Request, server: dict[str, Any]) -> list[BlockDevice]:
    devices: list[BlockDevice] = []
    for item in server.get("block_device_mapping_v2") or []:
        if not isinstance(item, dict):
            raise invalid("block_device_mapping_v2", item, "is not of type 'object'")
        boot_index = item.get("boot_index")
        if isinstance(boot_index, str):
            try:
                boot_index = int(boot_index)
            except ValueError:
                raise invalid("boot_index", boot_index, "is not an integer") from None
        source = item.get("source_type", "blank" if not item.get("uuid") else "image")
        destination = item.get("destination_type", "local" if source in ("image", "blank")
                               else "volume")
        if source not in SOURCE_TYPES:
            raise invalid("source_type", source, f"is not one of {list(SOURCE_TYPES)}")
        if destination not in DESTINATION_TYPES:
            raise invalid("destination_type", destination,
                          f"is not one of {list(DESTINATION_TYPES)}")
        size = item.get("volume_size")
        devices.append(BlockDevice(
            source_type=str(source), destination_type=str(destination), boot_index=boot_index,
            uuid=item.get("uuid"), volume_size=int(size) if size is not None else None,
            delete_on_termination=boolean(item.get("delete_on_termination", False),
                                          "delete_on_termination"),
            device_name=item.get("device_name"), guest_format=item.get("guest_format"),
            disk_bus=item.get("disk_bus"), device_type=item.get("device_type"),
            volume_type=item.get("volume_type"), tag=item.get("tag")))
    for item in server.get("block_device_mapping") or []:
        if not isinstance(item, dict):
            raise invalid("block_device_mapping", item, "is not of type 'object'")
        devices.append(BlockDevice("volume", "volume", None, item.get("volume_id"),
                                   device_name=item.get("device_name")))
    return devices


def _hints(body: dict[str, Any]) -> dict[str, Any]:
    hints = body.get("os:scheduler_hints", body.get("OS-SCH-HNT:scheduler_hints", {}))
    if not isinstance(hints, dict):
        raise invalid("os:scheduler_hints", hints, "is not of type 'object'")
    return hints


def parse_create(request: Request, body: dict[str, Any]) -> tuple[CreateRequest, bool]:
    """The create request, and whether to answer with the reservation id."""
    no_extra(body, {"server", "os:scheduler_hints", "OS-SCH-HNT:scheduler_hints"}, "")
    server = obj(body, "server")
    allowed = {"name", "imageRef", "flavorRef", "adminPass", "metadata", "networks",
               "OS-DCF:diskConfig", "accessIPv4", "accessIPv6", "key_name", "user_data",
               "availability_zone", "min_count", "max_count", "return_reservation_id",
               "security_groups", "config_drive", "block_device_mapping",
               "block_device_mapping_v2"}
    if not at_least(request, "2.57"):
        allowed.add("personality")
    for version, key in (("2.19", "description"), ("2.52", "tags"),
                         ("2.63", "trusted_image_certificates"), ("2.74", "host"),
                         ("2.74", "hypervisor_hostname"), ("2.90", "hostname")):
        if at_least(request, version):
            allowed.add(key)
    no_extra(server, allowed, "server")
    name = string(server, "name", min_len=1, max_len=255, name_like=True) \
        if "name" in server else required(server, "name", "server")
    flavor_ref = required(server, "flavorRef", "server")
    if isinstance(flavor_ref, bool) or not isinstance(flavor_ref, str | int) or \
            str(flavor_ref) == "":
        raise invalid("flavorRef", flavor_ref, "is not a valid flavor reference")
    image_ref = server.get("imageRef", "")
    if not isinstance(image_ref, str):
        raise invalid("imageRef", image_ref, f"{image_ref!r} is not of type 'string'")
    user_data = server.get("user_data")
    if user_data is not None:
        if not isinstance(user_data, str) or len(user_data) > 65535:
            raise invalid("user_data", "...", "is not a base64 string of at most 65535 bytes")
        try:
            base64.b64decode(user_data, validate=True)
        except (binascii.Error, ValueError):
            raise invalid("user_data", "...", "is not valid base64") from None
    disk_config = server.get("OS-DCF:diskConfig", "MANUAL")
    if disk_config not in ("AUTO", "MANUAL"):
        raise invalid("OS-DCF:diskConfig", disk_config, "is not one of ['AUTO', 'MANUAL']")
    security_groups = []
    for group in server.get("security_groups") or []:
        if not isinstance(group, dict) or not isinstance(group.get("name"), str):
            raise invalid("security_groups", group, "is not a {'name': ...} object")
        security_groups.append(group["name"])
    hostname = None
    if "hostname" in server:
        hostname = string(server, "hostname", min_len=1, max_len=255)
        if hostname is None or not HOSTNAME_RE.match(hostname) or (
                "." in hostname and not at_least(request, "2.94")):
            raise invalid("hostname", hostname, "is not a valid hostname")
    key_name = string(server, "key_name", min_len=1, max_len=255) \
        if "key_name" in server else None
    zone = string(server, "availability_zone", min_len=1, max_len=255) \
        if "availability_zone" in server else None
    req = CreateRequest(
        name=str(name), flavor_ref=str(flavor_ref), image_ref=image_ref,
        min_count=_count(server, "min_count"),
        # Nova: max_count defaults to min_count (min_count 3 alone asks for exactly 3)
        max_count=_count(server, "max_count" if "max_count" in server else "min_count"),
        key_name=key_name, user_data=user_data,
        metadata=metadata(server.get("metadata", {})),
        description=string(server, "description", max_len=255, nullable=True)
        if "description" in server else None,
        tags=tags(server["tags"]) if "tags" in server else [],
        security_groups=security_groups, availability_zone=zone,
        scheduler_hints=_hints(body), networks=_networks(request, server),
        access_ip_v4=ip_address(server, "accessIPv4", 4),
        access_ip_v6=ip_address(server, "accessIPv6", 6),
        config_drive=boolean(server.get("config_drive", False), "config_drive"),
        auto_disk_config=disk_config == "AUTO",
        admin_password=string(server, "adminPass", max_len=255)
        if "adminPass" in server else None,
        block_devices=_block_devices(request, server), hostname=hostname,
        requested_host=string(server, "host", min_len=1, max_len=255)
        if "host" in server else None,
        requested_node=string(server, "hypervisor_hostname", min_len=1, max_len=255)
        if "hypervisor_hostname" in server else None)
    if req.min_count > req.max_count:
        raise invalid("min_count", req.min_count, "min_count must be <= max_count")
    if req.hostname and req.max_count > 1:
        raise invalid("hostname", req.hostname,
                      "Cannot specify a hostname when creating multiple servers")
    if server.get("trusted_image_certificates"):
        raise invalid("trusted_image_certificates", "...",
                      "Image certificate validation is not supported by this cloud.")
    return_reservation = boolean(server.get("return_reservation_id", False),
                                 "return_reservation_id")
    return req, return_reservation
