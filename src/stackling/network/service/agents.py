"""Agents as ``/v2.0/agents`` shows them: one row per (role, host), kept fresh by
``AgentHeartbeat``; ``alive`` while the last heartbeat is younger than
``network.agent_down_time``."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from stackling.common.context import RequestContext
from stackling.common.ids import new_uuid
from stackling.common.timeutils import isotime, utcnow
from stackling.network.errors import NeutronBadRequest, NeutronForbidden, not_found
from stackling.network.models import Agent
from stackling.network.service.common import boolean, string
from stackling.network.service.core import NetworkService

#: role -> (agent_type, binary) as Neutron names them
ROLE_AGENTS = {
    "l2": ("Linux bridge agent", "neutron-linuxbridge-agent"),
    "dhcp": ("DHCP agent", "neutron-dhcp-agent"),
    "l3": ("L3 agent", "neutron-l3-agent"),
    "metadata": ("Metadata agent", "neutron-metadata-agent"),
}


def view(svc: NetworkService, row: Agent) -> dict[str, Any]:
    age = (utcnow() - row.heartbeat_at).total_seconds()
    return {
        "id": row.id, "agent_type": row.agent_type, "binary": row.binary,
        "topic": row.topic, "host": row.host, "admin_state_up": row.admin_state_up,
        "alive": age < svc.conf.agent_down_time, "description": row.description,
        "availability_zone": row.availability_zone,
        "configurations": dict(row.configurations),
        "created_at": isotime(row.created_at, subsecond=False).replace("T", " ")[:-1],
        "started_at": isotime(row.started_at, subsecond=False).replace("T", " ")[:-1],
        "heartbeat_timestamp": isotime(row.heartbeat_at, subsecond=False)
        .replace("T", " ")[:-1],
        "resources_synced": None,
    }


async def heartbeat(svc: NetworkService, host: str, roles: list[str], dataplane: str,
                    tunnel_ip: str | None, applied_revision: int) -> None:
    now = utcnow()
    names = [ROLE_AGENTS[r] for r in roles if r in ROLE_AGENTS]
    if "dhcp" in roles:
        names.append(ROLE_AGENTS["metadata"])
    async with svc.write(notify=False) as session:
        for agent_type, binary in names:
            row = (await session.execute(select(Agent).where(
                Agent.agent_type == agent_type, Agent.host == host))).scalar_one_or_none()
            config = {"dataplane": dataplane, "tunnel_ip": tunnel_ip,
                      "applied_revision": applied_revision}
            if row is None:
                session.add(Agent(id=new_uuid(), agent_type=agent_type, binary=binary,
                                  topic="network", host=host, configurations=config,
                                  availability_zone="nova" if agent_type in (
                                      "DHCP agent", "L3 agent") else None,
                                  created_at=now, started_at=now, heartbeat_at=now))
            else:
                row.heartbeat_at = now
                row.configurations = config


async def tunnel_peers(svc: NetworkService) -> dict[str, str]:
    """host -> tunnel IP of every live l2 agent that told us one."""
    out: dict[str, str] = {}
    async with svc.store.read() as session:
        for row in (await session.execute(select(Agent).where(
                Agent.agent_type == ROLE_AGENTS["l2"][0]))).scalars():
            ip = row.configurations.get("tunnel_ip")
            age = (utcnow() - row.heartbeat_at).total_seconds()
            if ip and age < svc.conf.agent_down_time:
                out[row.host] = str(ip)
    return out


async def list_agents(svc: NetworkService, ctx: RequestContext) -> list[dict[str, Any]]:
    if not svc.allowed(ctx, "get_agent"):
        return []  # Neutron's policy filters them all out
    async with svc.store.read() as session:
        rows = (await session.execute(select(Agent).order_by(Agent.host, Agent.agent_type))
                ).scalars()
        return [view(svc, r) for r in rows]


async def show(svc: NetworkService, ctx: RequestContext, ident: str) -> dict[str, Any]:
    if not svc.allowed(ctx, "get_agent"):
        raise not_found("agent", ident)
    async with svc.store.read() as session:
        row = await session.get(Agent, ident)
        if row is None:
            raise not_found("agent", ident)
        return view(svc, row)


async def update(svc: NetworkService, ctx: RequestContext, ident: str,
                 body: dict[str, Any]) -> dict[str, Any]:
    if not svc.allowed(ctx, "update_agent"):
        raise NeutronForbidden("(rule:update_agent) is disallowed by policy")
    if set(body) - {"admin_state_up", "description"}:
        raise NeutronBadRequest("Cannot update read-only attribute", "HTTPBadRequest")
    async with svc.write(notify=False) as session:
        row = await session.get(Agent, ident)
        if row is None:
            raise not_found("agent", ident)
        if "admin_state_up" in body:
            row.admin_state_up = boolean(body["admin_state_up"], "admin_state_up")
        if "description" in body:
            row.description = string(body["description"], "description", nullable=True) \
                or None
        await session.flush()
        return view(svc, row)


async def delete_agent(svc: NetworkService, ctx: RequestContext, ident: str) -> None:
    if not svc.allowed(ctx, "delete_agent"):
        raise NeutronForbidden("(rule:delete_agent) is disallowed by policy")
    async with svc.write(notify=False) as session:
        row = await session.get(Agent, ident)
        if row is None:
            raise not_found("agent", ident)
        await session.delete(row)
