"""Catalog administration, unified limits and endpoint groups with the stock openstack CLI."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from tests.clients.conftest import RunningCloud

pytestmark = pytest.mark.clients


def uniq(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_region_service_endpoint_and_catalog(running_cloud: RunningCloud) -> None:
    cli = running_cloud
    parent, child = uniq("region"), uniq("region")
    cli.openstack("region", "create", "--description", "top", parent)
    made = cli.openstack_json("region", "create", "--parent-region", parent, child)
    assert made["parent_region"] == parent
    assert {r["Region"] for r in cli.openstack_json("region", "list")} >= {parent, child}
    name, stype = uniq("svc"), uniq("type")
    service = cli.openstack_json("service", "create", "--name", name, "--description", "d",
                                 stype)
    assert service["enabled"] is True and service["type"] == stype
    url = "http://svc.example:9000/v1/$(project_id)s"
    endpoint = cli.openstack_json("endpoint", "create", "--region", child, name, "public", url)
    assert endpoint["region"] == child and endpoint["service_name"] == name
    listed = cli.openstack_json("endpoint", "list", "--service", name, "--interface", "public")
    assert [e["ID"] for e in listed] == [endpoint["id"]]
    # the next catalog shows it, with the project id filled in
    catalog = cli.openstack_json("catalog", "show", stype)
    assert "/v1/" in json.dumps(catalog) and "$(project_id)s" not in json.dumps(catalog)
    cli.openstack("endpoint", "set", "--disable", endpoint["id"])
    assert cli.openstack_json("endpoint", "show", endpoint["id"])["enabled"] is False
    # a region in use cannot go; the service takes its endpoints with it
    assert cli.openstack("region", "delete", child, check=False).returncode != 0
    cli.openstack("service", "delete", name)
    assert cli.openstack("endpoint", "show", endpoint["id"], check=False).returncode != 0
    cli.openstack("region", "delete", parent)
    assert child not in {r["Region"] for r in cli.openstack_json("region", "list")}


def test_registered_limits_and_limits(running_cloud: RunningCloud) -> None:
    cli = running_cloud
    name = uniq("svc")
    cli.openstack("service", "create", "--name", name, uniq("type"))
    resource = uniq("cores")
    reg = cli.openstack_json("registered", "limit", "create", "--service", name,
                             "--default-limit", "10", "--region", "RegionOne", resource)
    assert reg["default_limit"] == 10
    limit = cli.openstack_json("limit", "create", "--project", "demo", "--service", name,
                               "--resource-limit", "20", "--region", "RegionOne", resource)
    assert limit["resource_limit"] == 20
    assert cli.openstack_json("limit", "set", "--resource-limit", "25",
                              limit["id"])["resource_limit"] == 25
    demo_view = cli.openstack_json("limit", "list", cloud="stackling-demo")
    assert limit["id"] in {x["ID"] for x in demo_view}
    cli.openstack("limit", "delete", limit["id"])
    cli.openstack("registered", "limit", "delete", reg["id"])
    cli.openstack("service", "delete", name)


def test_endpoint_groups_and_project_endpoints(running_cloud: RunningCloud,
                                               tmp_path: Path) -> None:
    cli = running_cloud
    name = uniq("svc")
    service = cli.openstack_json("service", "create", "--name", name, uniq("type"))
    endpoint = cli.openstack_json("endpoint", "create", "--region", "RegionOne", name,
                                  "internal", "http://svc.example:9000")
    filters = tmp_path / "filters.json"
    filters.write_text(json.dumps({"service_id": service["id"]}))
    group = cli.openstack_json("endpoint", "group", "create", uniq("eg"), str(filters))
    cli.openstack("endpoint", "group", "add", "project", group["id"], "demo")
    assert group["id"] in {g["ID"] for g in cli.openstack_json("endpoint", "group", "list",
                                                               "--project", "demo")}
    cli.openstack("endpoint", "add", "project", endpoint["id"], "demo")
    assert endpoint["id"] in {e["ID"] for e in cli.openstack_json("endpoint", "list",
                                                                  "--project", "demo")}
    cli.openstack("endpoint", "remove", "project", endpoint["id"], "demo")
    cli.openstack("endpoint", "group", "remove", "project", group["id"], "demo")
    cli.openstack("endpoint", "group", "delete", group["id"])
    cli.openstack("service", "delete", name)
