"""The network service (Neutron v2.0 API) as other services use it: over REST, with their
service token (or the end user's, to see what they may use). What compute needs: networks,
subnets and ports - look them up, create, bind, unbind and delete ports."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from stackling.clients.session import ServiceSession
from stackling.common.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    ServiceUnavailable,
    StacklingError,
)


class NetworkServiceUnavailable(ServiceUnavailable):
    pass


class NetworkResourceNotFound(NotFound):
    pass


@dataclass(frozen=True)
class Network:
    id: str
    name: str
    project_id: str | None = None
    shared: bool = False
    external: bool = False
    status: str = "ACTIVE"
    admin_state_up: bool = True
    mtu: int | None = None
    subnets: list[str] = field(default_factory=list)

    @classmethod
    def from_neutron(cls, body: dict[str, Any]) -> Network:
        return cls(id=str(body["id"]), name=str(body.get("name") or ""),
                   project_id=body.get("project_id") or body.get("tenant_id"),
                   shared=bool(body.get("shared")),
                   external=bool(body.get("router:external")),
                   status=str(body.get("status") or "ACTIVE"),
                   admin_state_up=bool(body.get("admin_state_up", True)),
                   mtu=body.get("mtu"), subnets=list(body.get("subnets") or []))


@dataclass(frozen=True)
class Subnet:
    id: str
    network_id: str
    cidr: str
    ip_version: int = 4
    name: str = ""
    gateway_ip: str | None = None
    enable_dhcp: bool = True
    dns_nameservers: list[str] = field(default_factory=list)

    @classmethod
    def from_neutron(cls, body: dict[str, Any]) -> Subnet:
        return cls(id=str(body["id"]), network_id=str(body["network_id"]),
                   cidr=str(body["cidr"]), ip_version=int(body.get("ip_version") or 4),
                   name=str(body.get("name") or ""), gateway_ip=body.get("gateway_ip"),
                   enable_dhcp=bool(body.get("enable_dhcp", True)),
                   dns_nameservers=list(body.get("dns_nameservers") or []))


@dataclass(frozen=True)
class Port:
    id: str
    network_id: str
    mac_address: str
    fixed_ips: list[dict[str, str]] = field(default_factory=list)
    project_id: str | None = None
    name: str = ""
    status: str = "DOWN"
    device_id: str = ""
    device_owner: str = ""
    host_id: str = ""
    vif_type: str = "unbound"
    admin_state_up: bool = True
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_neutron(cls, body: dict[str, Any]) -> Port:
        return cls(id=str(body["id"]), network_id=str(body["network_id"]),
                   mac_address=str(body.get("mac_address") or ""),
                   fixed_ips=[dict(f) for f in body.get("fixed_ips") or []],
                   project_id=body.get("project_id") or body.get("tenant_id"),
                   name=str(body.get("name") or ""), status=str(body.get("status") or "DOWN"),
                   device_id=str(body.get("device_id") or ""),
                   device_owner=str(body.get("device_owner") or ""),
                   host_id=str(body.get("binding:host_id") or ""),
                   vif_type=str(body.get("binding:vif_type") or "unbound"),
                   admin_state_up=bool(body.get("admin_state_up", True)), raw=dict(body))


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    if isinstance(body, dict):
        err = body.get("NeutronError")
        if isinstance(err, dict):
            return str(err.get("message") or "")
    return ""


class NetworkClient:
    """Raises :class:`NetworkResourceNotFound` (404), BadRequest (400), Conflict (409:
    e.g. an address or MAC in use, no free address), Forbidden (403) and
    :class:`NetworkServiceUnavailable` (503: not in the catalog, unreachable, or an
    unexpected answer)."""

    def __init__(self, session: ServiceSession) -> None:
        self.session = session

    async def available(self) -> bool:
        """Whether this cloud has a network service in its catalog."""
        try:
            return await self.session.endpoint("network") is not None
        except StacklingError:
            return False

    async def _root(self) -> str:
        try:
            url = await self.session.endpoint("network")
        except StacklingError as exc:
            raise NetworkServiceUnavailable(
                f"The network service cannot be reached: {exc.message}") from exc
        if url is None:
            raise NetworkServiceUnavailable("This cloud has no network service.")
        return url

    async def _send(self, method: str, path: str, token: str | None = None,
                    **kwargs: Any) -> httpx.Response:
        url = f"{await self._root()}{path}"
        try:
            if token is not None:  # the end user's own token: their view
                headers = {**dict(kwargs.pop("headers", None) or {}), "X-Auth-Token": token}
                return await self.session.client.request(method, url, headers=headers,
                                                         **kwargs)
            return await self.session.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            raise NetworkServiceUnavailable("The network service cannot be reached.") from exc

    @staticmethod
    def _raise(response: httpx.Response, what: str, ok: tuple[int, ...] = (200,)) -> None:
        code = response.status_code
        if code in ok:
            return
        detail = _message(response)
        if code == 404:
            raise NetworkResourceNotFound(detail or f"{what} could not be found.")
        if code == 400:
            raise BadRequest(detail or f"The network service refused {what}.")
        if code == 409:
            raise Conflict(detail or f"{what}: conflict.")
        if code == 403:
            raise Forbidden(detail or f"Not allowed: {what}.")
        raise NetworkServiceUnavailable(
            f"The network service answered HTTP {code} for {what}.")

    async def _list(self, collection: str, key: str, params: dict[str, Any] | None,
                    token: str | None) -> list[dict[str, Any]]:
        response = await self._send("GET", f"/v2.0/{collection}", token, params=params or {})
        self._raise(response, f"the list of {collection}")
        return list(response.json().get(key, []))

    # networks and subnets

    async def get_network(self, network_id: str, *, token: str | None = None) -> Network:
        response = await self._send("GET", f"/v2.0/networks/{network_id}", token)
        self._raise(response, f"Network {network_id}")
        return Network.from_neutron(response.json()["network"])

    async def list_networks(self, *, token: str | None = None,
                            **filters: Any) -> list[Network]:
        return [Network.from_neutron(n)
                for n in await self._list("networks", "networks", filters, token)]

    async def get_subnet(self, subnet_id: str, *, token: str | None = None) -> Subnet:
        response = await self._send("GET", f"/v2.0/subnets/{subnet_id}", token)
        self._raise(response, f"Subnet {subnet_id}")
        return Subnet.from_neutron(response.json()["subnet"])

    async def list_subnets(self, *, token: str | None = None, **filters: Any) -> list[Subnet]:
        return [Subnet.from_neutron(s)
                for s in await self._list("subnets", "subnets", filters, token)]

    # ports

    async def get_port(self, port_id: str, *, token: str | None = None) -> Port:
        response = await self._send("GET", f"/v2.0/ports/{port_id}", token)
        self._raise(response, f"Port {port_id}")
        return Port.from_neutron(response.json()["port"])

    async def list_ports(self, *, token: str | None = None, **filters: Any) -> list[Port]:
        return [Port.from_neutron(p)
                for p in await self._list("ports", "ports", filters, token)]

    async def create_port(self, body: dict[str, Any], *, token: str | None = None) -> Port:
        response = await self._send("POST", "/v2.0/ports", token, json={"port": body})
        self._raise(response, "the port", ok=(201,))
        return Port.from_neutron(response.json()["port"])

    async def update_port(self, port_id: str, body: dict[str, Any], *,
                          token: str | None = None) -> Port:
        response = await self._send("PUT", f"/v2.0/ports/{port_id}", token,
                                    json={"port": body})
        self._raise(response, f"Port {port_id}")
        return Port.from_neutron(response.json()["port"])

    async def delete_port(self, port_id: str, *, token: str | None = None,
                          missing_ok: bool = True) -> None:
        response = await self._send("DELETE", f"/v2.0/ports/{port_id}", token)
        if response.status_code == 404 and missing_ok:
            return
        self._raise(response, f"Port {port_id}", ok=(204,))

    async def bind_port(self, port_id: str, *, device_id: str, device_owner: str,
                        host: str) -> Port:
        """Give the port to an instance on ``host`` (the network agent of that host wires
        it and reports it up)."""
        return await self.update_port(port_id, {"device_id": device_id,
                                                "device_owner": device_owner,
                                                "binding:host_id": host})

    async def unbind_port(self, port_id: str) -> Port | None:
        """Take the port back from its instance (None when it is gone already)."""
        try:
            return await self.update_port(port_id, {"device_id": "", "device_owner": "",
                                                    "binding:host_id": ""})
        except NetworkResourceNotFound:
            return None

    async def list_security_groups(self, *, token: str | None = None,
                                   **filters: Any) -> list[dict[str, Any]]:
        return await self._list("security-groups", "security_groups", filters, token)

    async def list_floating_ips(self, *, token: str | None = None,
                                **filters: Any) -> list[dict[str, Any]]:
        return await self._list("floatingips", "floatingips", filters, token)

    # security groups and floating IPs, as compute's deprecated proxy APIs need them

    async def _one(self, method: str, path: str, key: str, what: str, token: str | None,
                   ok: tuple[int, ...] = (200,), body: Any = None) -> dict[str, Any]:
        kwargs: dict[str, Any] = {} if body is None else {"json": body}
        response = await self._send(method, path, token, **kwargs)
        self._raise(response, what, ok=ok)
        return dict(response.json()[key])

    async def get_security_group(self, group_id: str, *,
                                 token: str | None = None) -> dict[str, Any]:
        return await self._one("GET", f"/v2.0/security-groups/{group_id}", "security_group",
                               f"Security group {group_id}", token)

    async def create_security_group(self, body: dict[str, Any], *,
                                    token: str | None = None) -> dict[str, Any]:
        return await self._one("POST", "/v2.0/security-groups", "security_group",
                               "the security group", token, ok=(201,),
                               body={"security_group": body})

    async def update_security_group(self, group_id: str, body: dict[str, Any], *,
                                    token: str | None = None) -> dict[str, Any]:
        return await self._one("PUT", f"/v2.0/security-groups/{group_id}", "security_group",
                               f"Security group {group_id}", token,
                               body={"security_group": body})

    async def delete_security_group(self, group_id: str, *,
                                    token: str | None = None) -> None:
        response = await self._send("DELETE", f"/v2.0/security-groups/{group_id}", token)
        self._raise(response, f"Security group {group_id}", ok=(204,))

    async def create_security_group_rule(self, body: dict[str, Any], *,
                                         token: str | None = None) -> dict[str, Any]:
        return await self._one("POST", "/v2.0/security-group-rules", "security_group_rule",
                               "the security group rule", token, ok=(201,),
                               body={"security_group_rule": body})

    async def get_security_group_rule(self, rule_id: str, *,
                                      token: str | None = None) -> dict[str, Any]:
        return await self._one("GET", f"/v2.0/security-group-rules/{rule_id}",
                               "security_group_rule", f"Security group rule {rule_id}",
                               token)

    async def delete_security_group_rule(self, rule_id: str, *,
                                         token: str | None = None) -> None:
        response = await self._send("DELETE", f"/v2.0/security-group-rules/{rule_id}", token)
        self._raise(response, f"Security group rule {rule_id}", ok=(204,))

    async def get_floating_ip(self, fip_id: str, *,
                              token: str | None = None) -> dict[str, Any]:
        return await self._one("GET", f"/v2.0/floatingips/{fip_id}", "floatingip",
                               f"Floating IP {fip_id}", token)

    async def create_floating_ip(self, body: dict[str, Any], *,
                                 token: str | None = None) -> dict[str, Any]:
        return await self._one("POST", "/v2.0/floatingips", "floatingip", "the floating IP",
                               token, ok=(201,), body={"floatingip": body})

    async def update_floating_ip(self, fip_id: str, body: dict[str, Any], *,
                                 token: str | None = None) -> dict[str, Any]:
        return await self._one("PUT", f"/v2.0/floatingips/{fip_id}", "floatingip",
                               f"Floating IP {fip_id}", token, body={"floatingip": body})

    async def delete_floating_ip(self, fip_id: str, *, token: str | None = None) -> None:
        response = await self._send("DELETE", f"/v2.0/floatingips/{fip_id}", token)
        self._raise(response, f"Floating IP {fip_id}", ok=(204,))
