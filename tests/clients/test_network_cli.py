"""The stock ``openstack`` CLI against the network service: networks, subnets, ports,
routers, floating IPs, security groups (create/list/show/delete), and the bootstrap's
public/private topology."""

from __future__ import annotations

import pytest

from tests.clients.conftest import RunningCloud

pytestmark = pytest.mark.clients


def test_bootstrap_topology(running_cloud: RunningCloud) -> None:
    cloud = running_cloud
    names = {n["Name"] for n in cloud.openstack_json("network", "list")}
    assert {"public", "private"} <= names
    public = cloud.openstack_json("network", "show", "public")
    assert public["router:external"] is True
    router = cloud.openstack_json("router", "show", "router1", cloud="stackling-demo")
    assert router["external_gateway_info"]["network_id"] == public["id"]


def test_network_subnet_port_lifecycle(running_cloud: RunningCloud) -> None:
    cloud = running_cloud
    net = cloud.openstack_json("network", "create", "cli-net", cloud="stackling-demo")
    subnet = cloud.openstack_json("subnet", "create", "--network", "cli-net",
                                  "--subnet-range", "10.123.0.0/24", "--dns-nameserver",
                                  "10.123.0.53", "cli-subnet", cloud="stackling-demo")
    assert subnet["cidr"] == "10.123.0.0/24" and subnet["gateway_ip"] == "10.123.0.1"
    port = cloud.openstack_json("port", "create", "--network", "cli-net", "--fixed-ip",
                                "subnet=cli-subnet,ip-address=10.123.0.77", "cli-port",
                                cloud="stackling-demo")
    assert port["fixed_ips"][0]["ip_address"] == "10.123.0.77"
    listed = cloud.openstack_json("port", "list", "--network", "cli-net",
                                  cloud="stackling-demo")
    assert "cli-port" in {p["Name"] for p in listed}
    shown = cloud.openstack_json("port", "show", "cli-port", cloud="stackling-demo")
    assert shown["id"] == port["id"]
    again = cloud.openstack("port", "create", "--network", "cli-net", "--fixed-ip",
                            "ip-address=10.123.0.77", "dup", cloud="stackling-demo",
                            check=False)
    assert again.returncode != 0 and "already allocated" in again.stderr
    cloud.openstack("port", "delete", "cli-port", cloud="stackling-demo")
    cloud.openstack("subnet", "delete", "cli-subnet", cloud="stackling-demo")
    cloud.openstack("network", "delete", net["id"], cloud="stackling-demo")
    gone = cloud.openstack("network", "show", "cli-net", cloud="stackling-demo", check=False)
    assert gone.returncode != 0


def test_router_floating_ip_security_group(running_cloud: RunningCloud) -> None:
    cloud = running_cloud
    demo = "stackling-demo"
    cloud.openstack_json("network", "create", "cli-l3", cloud=demo)
    cloud.openstack_json("subnet", "create", "--network", "cli-l3", "--subnet-range",
                         "10.124.0.0/24", "cli-l3-subnet", cloud=demo)
    cloud.openstack_json("router", "create", "cli-router", cloud=demo)
    cloud.openstack("router", "set", "--external-gateway", "public", "cli-router", cloud=demo)
    cloud.openstack("router", "add", "subnet", "cli-router", "cli-l3-subnet", cloud=demo)
    sg = cloud.openstack_json("security", "group", "create", "cli-sg", cloud=demo)
    rule = cloud.openstack_json("security", "group", "rule", "create", "--protocol", "tcp",
                                "--dst-port", "22", "--ingress", "cli-sg", cloud=demo)
    assert rule["port_range_min"] == 22
    groups = {g["Name"] for g in cloud.openstack_json("security", "group", "list",
                                                      cloud=demo)}
    assert {"default", "cli-sg"} <= groups
    port = cloud.openstack_json("port", "create", "--network", "cli-l3", "--security-group",
                                "cli-sg", "cli-l3-port", cloud=demo)
    fip = cloud.openstack_json("floating", "ip", "create", "public", cloud=demo)
    assert fip["floating_ip_address"].startswith("172.24.4.")
    cloud.openstack("floating", "ip", "set", "--port", port["id"],
                    fip["floating_ip_address"], cloud=demo)
    shown = cloud.openstack_json("floating", "ip", "show", fip["id"], cloud=demo)
    assert shown["port_id"] == port["id"]
    assert shown["fixed_ip_address"] == port["fixed_ips"][0]["ip_address"]
    cloud.openstack("floating", "ip", "unset", "--port", fip["id"], cloud=demo)
    cloud.openstack("floating", "ip", "delete", fip["id"], cloud=demo)
    cloud.openstack("port", "delete", "cli-l3-port", cloud=demo)
    cloud.openstack("security", "group", "delete", sg["id"], cloud=demo)
    cloud.openstack("router", "remove", "subnet", "cli-router", "cli-l3-subnet", cloud=demo)
    cloud.openstack("router", "unset", "--external-gateway", "cli-router", cloud=demo)
    cloud.openstack("router", "delete", "cli-router", cloud=demo)
    cloud.openstack("network", "delete", "cli-l3", cloud=demo)


def test_quota_subnet_pool_router_port_and_routes(running_cloud: RunningCloud) -> None:
    cloud = running_cloud
    cloud.openstack("quota", "set", "--networks", "42", "demo")
    quotas = {q["Resource"]: q["Limit"] for q in cloud.openstack_json("quota", "show", "demo")}
    assert quotas["networks"] == 42
    cloud.openstack_json("subnet", "pool", "create", "--pool-prefix", "10.222.0.0/16",
                         "--default-prefix-length", "24", "cli-pool")
    cloud.openstack_json("network", "create", "cli-pool-net")
    sub = cloud.openstack_json("subnet", "create", "--network", "cli-pool-net",
                               "--subnet-pool", "cli-pool", "cli-pool-sub")
    assert sub["cidr"] == "10.222.0.0/24"
    cloud.openstack_json("router", "create", "cli-r2")
    port = cloud.openstack_json("port", "create", "--network", "cli-pool-net", "cli-r2-port")
    cloud.openstack("router", "add", "port", "cli-r2", "cli-r2-port")
    hop = port["fixed_ips"][0]["ip_address"]
    cloud.openstack("router", "set", "--route", f"destination=10.1.0.0/16,gateway={hop}",
                    "cli-r2")
    router = cloud.openstack_json("router", "show", "cli-r2")
    assert router["routes"] == [{"destination": "10.1.0.0/16", "nexthop": hop}]
    avail = cloud.openstack_json("ip", "availability", "show", "cli-pool-net")
    assert avail["used_ips"] == 2  # the DHCP port and the router port
