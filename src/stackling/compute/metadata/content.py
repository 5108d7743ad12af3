"""The metadata documents of one instance (pure functions of its description).

The same bytes go onto a config drive (``openstack/<version>/...``) and out of the
metadata service, so a guest sees one truth whichever it reads.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from stackling.compute.rpcapi import InstanceInfo

#: the OpenStack metadata versions served (``latest`` is the last one)
OPENSTACK_VERSIONS = ("2012-08-10", "2013-04-04", "2013-10-17", "2015-10-15", "2016-06-30",
                      "2016-10-06", "2017-02-22", "2018-08-27", "2020-10-14")
EC2_VERSIONS = ("1.0", "2007-01-19", "2009-04-04")
KEY_NAME = "key_name"  # the instance metadata item naming the key pair, when known


def _key_name(instance: InstanceInfo) -> str:
    return instance.metadata.get(KEY_NAME) or "default"


def meta_data(instance: InstanceInfo, availability_zone: str = "nova") -> dict[str, Any]:
    data: dict[str, Any] = {
        "uuid": instance.uuid,
        "meta": dict(instance.metadata),
        "hostname": f"{instance.hostname or instance.name}.novalocal",
        "name": instance.name,
        "launch_index": 0,
        "availability_zone": availability_zone,
        "project_id": instance.project_id,
        "devices": [],
    }
    if instance.key_data:
        name = _key_name(instance)
        data["public_keys"] = {name: instance.key_data}
        data["keys"] = [{"name": name, "type": "ssh", "data": instance.key_data}]
    return data


def network_data(vifs: list[dict[str, Any]]) -> dict[str, Any]:
    """``network_data.json``: links from the ports (addresses come from DHCP)."""
    links, networks = [], []
    for index, vif in enumerate(vifs):
        port = str(vif.get("id", f"port{index}"))
        links.append({"id": f"tap{port[:11]}", "vif_id": port, "type": "ovs",
                      "mtu": vif.get("mtu", 1500),
                      "ethernet_mac_address": vif.get("mac_address") or vif.get("address")})
        networks.append({"id": f"network{index}", "type": "ipv4_dhcp",
                         "link": f"tap{port[:11]}",
                         "network_id": vif.get("network_id", "")})
    return {"links": links, "networks": networks, "services": []}


def user_data(instance: InstanceInfo) -> bytes | None:
    """The user data as bytes (it arrives base64-encoded in the API; the instance record
    keeps it that way)."""
    if not instance.user_data:
        return None
    try:
        return base64.b64decode(instance.user_data, validate=True)
    except (binascii.Error, ValueError):
        return instance.user_data.encode()


def openstack_files(instance: InstanceInfo, vifs: list[dict[str, Any]] | None = None,
                    availability_zone: str = "nova") -> dict[str, bytes]:
    """Path (below ``openstack/<version>/``) -> bytes."""
    files = {
        "meta_data.json": json.dumps(meta_data(instance, availability_zone)).encode(),
        "network_data.json": json.dumps(network_data(vifs or [])).encode(),
        "vendor_data.json": b"{}",
        "vendor_data2.json": b"{}",
    }
    data = user_data(instance)
    if data is not None:
        files["user_data"] = data
    return files


def ec2_meta_data(instance: InstanceInfo, availability_zone: str = "nova"
                  ) -> dict[str, Any]:
    """The EC2 ``meta-data`` tree (nested dicts; leaves are strings)."""
    numeric = instance.instance_name.rsplit("-", 1)[-1]
    tree: dict[str, Any] = {
        "ami-id": f"ami-{(instance.image_ref or '0')[:8]}",
        "ami-launch-index": "0",
        "ami-manifest-path": "FIXME",  # what Nova answers, verbatim
        "hostname": f"{instance.hostname or instance.name}.novalocal",
        "instance-action": "none",
        "instance-id": f"i-{numeric}",
        "instance-type": instance.flavor.name,
        "local-hostname": f"{instance.hostname or instance.name}.novalocal",
        "placement": {"availability-zone": availability_zone},
        "reservation-id": f"r-{instance.uuid[:8]}",
        "security-groups": "default",
        "block-device-mapping": {"ami": "vda", "root": "/dev/vda"},
    }
    if instance.key_data:
        tree["public-keys"] = {f"0={_key_name(instance)}": {"openssh-key": instance.key_data}}
    return tree


def ec2_lookup(tree: dict[str, Any], path: str) -> str | None:
    """A path below ``meta-data/``: a leaf's value, a directory's listing (``name/`` for
    subtrees; public keys list as ``0=<name>`` and are read as ``public-keys/0/...``, as in
    EC2), None if absent."""
    node: Any = tree
    for part in [p for p in path.split("/") if p]:
        if not isinstance(node, dict):
            return None
        key = part if part in node else next(
            (k for k in node if "=" in k and k.split("=", 1)[0] == part), None)
        if key is None:
            return None
        node = node[key]
    if isinstance(node, dict):
        return "\n".join(k if "=" in k or not isinstance(v, dict) else f"{k}/"
                         for k, v in node.items())
    return str(node)
