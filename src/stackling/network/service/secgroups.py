"""Security groups and their rules, and the default group every project gets (made the
first time the project needs one, with Neutron's default rules: all egress, ingress from
members of the same group)."""

from __future__ import annotations

import ipaddress
from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from stackling.common.context import RequestContext
from stackling.common.ids import new_uuid
from stackling.network.errors import NeutronBadRequest, NeutronConflict, not_found
from stackling.network.models import (
    DefaultSecurityGroup,
    Port,
    SecurityGroup,
    SecurityGroupRule,
    Tag,
)
from stackling.network.service import views
from stackling.network.service.common import (
    boolean,
    check_quota,
    owner_of,
    owns,
    string,
    touch,
    unknown_keys,
)
from stackling.network.service.core import NetworkService

PROTOCOLS = {"ah": 51, "dccp": 33, "egp": 8, "esp": 50, "gre": 47, "hopopt": 0, "icmp": 1,
             "igmp": 2, "ip": 0, "ipip": 4, "ipv6-encap": 41, "ipv6-frag": 44,
             "ipv6-icmp": 58, "icmpv6": 58, "ipv6-nonxt": 59, "ipv6-opts": 60,
             "ipv6-route": 43, "ospf": 89, "pgm": 113, "rsvp": 46, "sctp": 132, "tcp": 6,
             "udp": 17, "udplite": 136, "vrrp": 112, "any": -1}
PORT_PROTOCOLS = {"tcp", "udp", "sctp", "dccp", "udplite", "6", "17", "132", "33", "136"}
ICMP = {"icmp", "icmpv6", "ipv6-icmp", "1", "58"}
RULE_KEYS = {"security_group_id", "direction", "ethertype", "protocol", "port_range_min",
             "port_range_max", "remote_ip_prefix", "remote_group_id", "description",
             "tenant_id", "project_id", "remote_address_group_id"}


def _rule_rows(sg: SecurityGroup, default: bool) -> list[SecurityGroupRule]:
    rows = []
    for ethertype in ("IPv4", "IPv6"):
        rows.append(SecurityGroupRule(id=new_uuid(), project_id=sg.project_id,
                                      security_group_id=sg.id, direction="egress",
                                      ethertype=ethertype))
        if default:
            rows.append(SecurityGroupRule(id=new_uuid(), project_id=sg.project_id,
                                          security_group_id=sg.id, direction="ingress",
                                          ethertype=ethertype, remote_group_id=sg.id))
    return rows


async def default_id(session: AsyncSession, project_id: str) -> str | None:
    row = await session.get(DefaultSecurityGroup, project_id)
    return row.security_group_id if row else None


async def ensure_default(session: AsyncSession, project_id: str) -> str:
    """The project's default group, created now if it has none (call inside a write)."""
    existing = await default_id(session, project_id)
    if existing is not None:
        return existing
    sg = SecurityGroup(id=new_uuid(), project_id=project_id, name="default",
                       description="Default security group")
    session.add(sg)
    await session.flush()
    session.add(DefaultSecurityGroup(project_id=project_id, security_group_id=sg.id))
    session.add_all(_rule_rows(sg, default=True))
    await session.flush()
    return sg.id


async def ensure_default_outside(svc: NetworkService, project_id: str | None) -> None:
    if not project_id:
        return
    async with svc.store.read() as session:
        if await default_id(session, project_id) is not None:
            return
    async with svc.write() as session:
        await ensure_default(session, project_id)


async def _view(session: AsyncSession, rows: list[SecurityGroup]) -> list[dict[str, Any]]:
    ids = [r.id for r in rows]
    rules: dict[str, list[SecurityGroupRule]] = {i: [] for i in ids}
    for chunk in range(0, len(ids), 500):
        part = ids[chunk:chunk + 500]
        for rule in (await session.execute(select(SecurityGroupRule).where(
                SecurityGroupRule.security_group_id.in_(part)).order_by(
                SecurityGroupRule.created_at, SecurityGroupRule.id))).scalars():
            rules[rule.security_group_id].append(rule)
    tags = await views.tags_of(session, ids)
    return [views.security_group(r, rules[r.id], tags[r.id]) for r in rows]


async def get(session: AsyncSession, ctx: RequestContext, ident: str) -> SecurityGroup:
    row = await session.get(SecurityGroup, ident)
    if row is None or not owns(ctx, row.project_id):
        raise not_found("security_group", ident)
    return row


async def list_groups(svc: NetworkService, ctx: RequestContext) -> list[dict[str, Any]]:
    await ensure_default_outside(svc, ctx.project_id)
    async with svc.store.read() as session:
        query = select(SecurityGroup).order_by(SecurityGroup.created_at, SecurityGroup.id)
        if not ctx.is_admin:
            query = query.where(SecurityGroup.project_id == ctx.project_id)
        return await _view(session, list((await session.execute(query)).scalars()))


async def show(svc: NetworkService, ctx: RequestContext, ident: str) -> dict[str, Any]:
    async with svc.store.read() as session:
        return (await _view(session, [await get(session, ctx, ident)]))[0]


async def create(svc: NetworkService, ctx: RequestContext,
                 body: dict[str, Any]) -> dict[str, Any]:
    unknown_keys(body, {"name", "description", "tenant_id", "project_id", "stateful",
                        "tags"}, "security_group")
    project = owner_of(ctx, body)
    name = string(body.get("name", ""), "name")
    async with svc.write() as session:
        await ensure_default(session, project)
        if name == "default":
            raise NeutronConflict("Default security group already exists.",
                                  "SecurityGroupDefaultAlreadyExists")
        await check_quota(session, svc, project, "security_group")
        sg = SecurityGroup(id=new_uuid(), project_id=project, name=name,
                           description=string(body.get("description", ""), "description"),
                           stateful=boolean(body.get("stateful", True), "stateful"))
        session.add(sg)
        await session.flush()
        session.add_all(_rule_rows(sg, default=False))
        for tag in body.get("tags") or []:
            session.add(Tag(resource_id=sg.id, tag=string(tag, "tags")))
        await session.flush()
        return (await _view(session, [sg]))[0]


async def update(svc: NetworkService, ctx: RequestContext, ident: str,
                 body: dict[str, Any]) -> dict[str, Any]:
    unknown_keys(body, {"name", "description", "stateful"}, "security_group")
    async with svc.write() as session:
        sg = await get(session, ctx, ident)
        if "name" in body:
            name = string(body["name"], "name")
            is_default = (await default_id(session, sg.project_id)) == sg.id
            if name == "default" and not is_default:
                raise NeutronConflict("Default security group already exists.",
                                      "SecurityGroupDefaultAlreadyExists")
            if sg.name == "default" and name != "default" and is_default:
                raise NeutronConflict("Updating default security group not allowed.",
                                      "SecurityGroupCannotUpdateDefault")
            sg.name = name
        if "description" in body:
            sg.description = string(body["description"], "description")
        if "stateful" in body:
            stateful = boolean(body["stateful"], "stateful")
            if stateful != sg.stateful and await _in_use(session, ident):
                raise NeutronConflict(f"Security Group {ident} in use.",
                                      "SecurityGroupInUse")
            sg.stateful = stateful
        touch(sg)
        await session.flush()
        return (await _view(session, [sg]))[0]


async def _in_use(session: AsyncSession, ident: str) -> bool:
    for groups in (await session.execute(select(Port.security_group_ids))).scalars():
        if ident in groups:
            return True
    return False


async def delete_group(svc: NetworkService, ctx: RequestContext, ident: str) -> None:
    async with svc.write() as session:
        sg = await get(session, ctx, ident)
        if (await default_id(session, sg.project_id)) == sg.id and not ctx.is_admin:
            raise NeutronConflict("Insufficient rights for removing default security group.",
                                  "SecurityGroupCannotRemoveDefault")
        if await _in_use(session, ident):
            raise NeutronConflict(f"Security Group {ident} in use.", "SecurityGroupInUse")
        # its own rules, and other groups' rules that name it as their remote group
        mine = or_(SecurityGroupRule.security_group_id == ident,
                   SecurityGroupRule.remote_group_id == ident)
        rules = list((await session.execute(select(SecurityGroupRule).where(mine))).scalars())
        for peer in {r.security_group_id for r in rules} - {ident}:
            other = await session.get(SecurityGroup, peer)
            if other is not None:
                touch(other)
        rule_ids = [r.id for r in rules]
        await session.execute(delete(Tag).where(Tag.resource_id.in_([ident, *rule_ids])))
        await session.execute(delete(SecurityGroupRule).where(mine))
        await session.execute(delete(DefaultSecurityGroup).where(
            DefaultSecurityGroup.security_group_id == ident))
        await session.delete(sg)


# -- rules ------------------------------------------------------------------------------------
def _normal(prefix: str | None) -> str | None:
    return None if prefix is None else str(ipaddress.ip_network(prefix, strict=False))


def _protocol(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise NeutronBadRequest(f"Security group rule protocol {value} not supported.",
                                "SecurityGroupRuleInvalidProtocol")
    text = str(value).lower()
    if text in PROTOCOLS:
        return None if text == "any" else text
    if text.isdigit() and 0 <= int(text) <= 255:
        return text
    raise NeutronBadRequest(f"Security group rule protocol {value} not supported. Only "
                            "protocol values [None, ah, dccp, egp, esp, gre, icmp, igmp, "
                            "ipv6-encap, ipv6-frag, ipv6-icmp, ipv6-nonxt, ipv6-opts, "
                            "ipv6-route, ospf, pgm, rsvp, sctp, tcp, udp, udplite, vrrp] and "
                            "integer representations [0 to 255] are supported.",
                            "SecurityGroupRuleInvalidProtocol")


def _port(value: Any, attr: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise NeutronBadRequest(f"Invalid value for port {value}",
                                "SecurityGroupInvalidPortValue")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise NeutronBadRequest(f"Invalid value for port {value}",
                                "SecurityGroupInvalidPortValue") from None


def _ports(protocol: str | None, low: int | None, high: int | None
           ) -> tuple[int | None, int | None]:
    if protocol is None and (low is not None or high is not None):
        raise NeutronBadRequest("Must also specify protocol if port range is given.",
                                "SecurityGroupProtocolRequiredWithPorts")
    if protocol in ICMP:
        for name, attr, value in (("type", "port-range-min", low),
                                  ("code", "port-range-max", high)):
            if value is not None and not 0 <= value <= 255:
                raise NeutronBadRequest(f"Invalid value for ICMP {name} ({attr}): {value}. "
                                        "It must be 0 to 255.",
                                        "SecurityGroupInvalidIcmpValue")
        if low is None and high is not None:
            raise NeutronBadRequest(f"ICMP code (port-range-max) {high} is provided but ICMP "
                                    "type (port-range-min) is missing.",
                                    "SecurityGroupMissingIcmpType")
        return low, high
    if protocol in PORT_PROTOCOLS:
        for value in (low, high):
            if value is not None and not 1 <= value <= 65535:
                raise NeutronBadRequest(f"Invalid value for port {value}",
                                        "SecurityGroupInvalidPortValue")
        if high is not None and (low is None or low > high):
            raise NeutronBadRequest("For TCP/UDP protocols, port_range_min must be <= "
                                    "port_range_max", "SecurityGroupInvalidPortRange")
        if low is not None and high is None:
            high = low
        return low, high
    if low is not None or high is not None:
        raise NeutronBadRequest(f"Invalid protocol {protocol} for port range, only supported "
                                "for TCP, UDP, UDPLITE, SCTP and DCCP.",
                                "SecurityGroupInvalidProtocolForPortRange")
    return None, None


async def create_rule(svc: NetworkService, ctx: RequestContext, body: dict[str, Any],
                      session: AsyncSession) -> SecurityGroupRule:
    unknown_keys(body, RULE_KEYS, "security_group_rule")
    sg_id = body.get("security_group_id")
    if not isinstance(sg_id, str):
        raise NeutronBadRequest("Failed to parse request. Required attribute "
                                "'security_group_id' not specified", "HTTPBadRequest")
    sg = await get(session, ctx, sg_id)
    direction = body.get("direction")
    if direction not in ("ingress", "egress"):
        raise NeutronBadRequest(f"Invalid input for direction. Reason: '{direction}' is not "
                                "in ['ingress', 'egress'].", "HTTPBadRequest")
    ethertype = body.get("ethertype") or "IPv4"
    if not isinstance(ethertype, str) or ethertype.lower() not in ("ipv4", "ipv6"):
        raise NeutronBadRequest(f"Invalid input for ethertype. Reason: '{ethertype}' is not "
                                "in ['IPv4', 'IPv6'].", "HTTPBadRequest")
    ethertype = "IPv4" if ethertype.lower() == "ipv4" else "IPv6"
    protocol = _protocol(body.get("protocol"))
    low, high = _ports(protocol, _port(body.get("port_range_min"), "port_range_min"),
                       _port(body.get("port_range_max"), "port_range_max"))
    prefix = body.get("remote_ip_prefix")
    remote_group = body.get("remote_group_id")
    if prefix is not None and remote_group is not None:
        raise NeutronBadRequest("Only remote_ip_prefix or remote_group_id may be provided.",
                                "SecurityGroupRemoteGroupAndRemoteIpPrefix")
    if prefix is not None:
        try:
            net = ipaddress.ip_network(str(prefix), strict=False)
        except ValueError:
            raise NeutronBadRequest(f"Invalid input for remote_ip_prefix. Reason: '{prefix}' "
                                    "is not a valid IP subnet.", "HTTPBadRequest") from None
        if f"IPv{net.version}" != ethertype:
            raise NeutronBadRequest(f"Conflicting value ethertype {ethertype} for CIDR "
                                    f"{prefix}", "SecurityGroupRuleParameterConflict")
        # kept as given (host bits too), a mask added when there is none, as Neutron does;
        # normalized_cidr shows the network
        prefix = str(prefix) if "/" in str(prefix) else f"{prefix}/{net.prefixlen}"
    if remote_group is not None:
        await get(session, ctx, str(remote_group))
    if body.get("remote_address_group_id") is not None:
        raise NeutronBadRequest("Remote address groups are not supported.", "HTTPBadRequest")
    project = owner_of(ctx, body) if ("project_id" in body or "tenant_id" in body) \
        else sg.project_id
    for rule in (await session.execute(select(SecurityGroupRule).where(
            SecurityGroupRule.security_group_id == sg.id))).scalars():
        if (rule.direction, rule.ethertype, rule.protocol, rule.port_range_min,
                rule.port_range_max, _normal(rule.remote_ip_prefix), rule.remote_group_id) == (
                direction, ethertype, protocol, low, high, _normal(prefix), remote_group):
            raise NeutronConflict(f"Security group rule already exists. Rule id is "
                                  f"{rule.id}.", "SecurityGroupRuleExists")
    await check_quota(session, svc, project, "security_group_rule")
    row = SecurityGroupRule(
        id=new_uuid(), project_id=project, security_group_id=sg.id, direction=direction,
        ethertype=ethertype, protocol=protocol, port_range_min=low, port_range_max=high,
        remote_ip_prefix=prefix, remote_group_id=remote_group,
        description=string(body.get("description", ""), "description"))
    session.add(row)
    touch(sg)
    await session.flush()
    return row


async def create_rules(svc: NetworkService, ctx: RequestContext,
                       bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    async with svc.write() as session:
        rows = [await create_rule(svc, ctx, body, session) for body in bodies]
        return [views.rule(r) for r in rows]


async def list_rules(svc: NetworkService, ctx: RequestContext) -> list[dict[str, Any]]:
    await ensure_default_outside(svc, ctx.project_id)
    async with svc.store.read() as session:
        query = select(SecurityGroupRule).order_by(SecurityGroupRule.created_at,
                                                   SecurityGroupRule.id)
        if not ctx.is_admin:
            own = select(SecurityGroup.id).where(SecurityGroup.project_id == ctx.project_id)
            query = query.where((SecurityGroupRule.project_id == ctx.project_id)
                                | SecurityGroupRule.security_group_id.in_(own))
        return [views.rule(r) for r in (await session.execute(query)).scalars()]


async def _rule(session: AsyncSession, ctx: RequestContext, ident: str) -> SecurityGroupRule:
    row = await session.get(SecurityGroupRule, ident)
    if row is None:
        raise not_found("security_group_rule", ident)
    if not owns(ctx, row.project_id):
        sg = await session.get(SecurityGroup, row.security_group_id)
        if sg is None or not owns(ctx, sg.project_id):
            raise not_found("security_group_rule", ident)
    return row


async def show_rule(svc: NetworkService, ctx: RequestContext, ident: str) -> dict[str, Any]:
    async with svc.store.read() as session:
        return views.rule(await _rule(session, ctx, ident))


async def delete_rule(svc: NetworkService, ctx: RequestContext, ident: str) -> None:
    async with svc.write() as session:
        row = await _rule(session, ctx, ident)
        sg = await session.get(SecurityGroup, row.security_group_id)
        if sg is not None:
            touch(sg)
        await session.delete(row)
