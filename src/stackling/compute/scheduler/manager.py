"""The scheduler: flow step 5 (DESIGN.md §1).

For each request spec: load the hosts (placement usage, service liveness, zones), keep those
every filter accepts, rank them with the weighers, and claim the resources on the best one
(:func:`stackling.compute.service.placement.claim`, atomic). If a concurrent claim took the
room first, try the next host. Then bind the instance to the host -- a compare-and-swap that
fails if the server was deleted meanwhile, in which case the claim is given back -- and cast
:class:`~stackling.compute.rpcapi.BuildAndRunInstance` to ``compute.<host>``.
No host: the server goes to ERROR with Nova's "No valid host was found" fault.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from typing import Any

from sqlalchemy import false, select

from stackling.bus import Message, Subscription, Transport
from stackling.common.errors import StacklingError
from stackling.common.timeutils import utcnow
from stackling.compute import states
from stackling.compute.models import (
    ComputeNode,
    Instance,
    Migration,
    ServerGroup,
    ServerGroupMember,
)
from stackling.compute.rpcapi import (
    SCHEDULER_TOPIC,
    ComputeAgentAPI,
    RequestSpec,
    ResizeInstance,
    ScheduleInstances,
)
from stackling.compute.scheduler.filters import FilterContext, HostState, filter_hosts
from stackling.compute.scheduler.weighers import weigh
from stackling.compute.service import hosts, instance_actions, placement, resize
from stackling.compute.service.compute import ComputeService
from stackling.compute.service.instances import compare_and_swap, exhausted, set_error

log = logging.getLogger("stackling.compute.scheduler")

NO_VALID_HOST = "No valid host was found. "

EVENT = "conductor_schedule_and_build_instances"


class Scheduler:
    def __init__(self, svc: ComputeService, bus: Transport, host: str = "") -> None:
        self.svc = svc
        self.bus = bus
        self.host = host
        self._heartbeat: asyncio.Task[None] | None = None
        self.agents = ComputeAgentAPI(bus)
        self._subscription: Subscription | None = None

    async def start(self) -> None:
        self._subscription = await self.bus.serve(SCHEDULER_TOPIC, self._handle)
        if self.host:
            self._heartbeat = asyncio.create_task(hosts.heartbeats(
                self.svc.store, self.host, "nova-scheduler", SCHEDULER_TOPIC,
                self.svc.conf.heartbeat_interval))

    async def stop(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heartbeat
        if self._subscription is not None:
            await self._subscription.cancel()

    async def _handle(self, message: Message, context: dict[str, Any]) -> None:
        if isinstance(message, ScheduleInstances):
            # one at a time within a request, so a group's members see each other
            for spec in message.specs:
                await self.schedule(spec, message.request_id)
        else:
            log.warning("scheduler: unexpected message %s", type(message).NAME)

    # -- the step --------------------------------------------------------------------------
    async def load_hosts(self) -> list[HostState]:
        """Every compute node with its placement usage, liveness and zone."""
        conf = self.svc.conf
        now = utcnow()
        async with self.svc.store.read() as session:
            providers = await placement.provider_usages(session)
            nodes = {n.hypervisor_hostname: n.host for n in (await session.execute(
                select(ComputeNode))).scalars()}
            services = await hosts.compute_services(session)
            zones = await hosts.host_zones(session, conf.default_availability_zone)
        out = []
        for p in providers:
            host = nodes.get(p.name)
            if host is None:
                continue
            service = services.get(host)
            out.append(HostState(
                host=host, node=p.name, zone=zones.get(host, conf.default_availability_zone),
                up=service is not None and hosts.is_up(service, conf.service_down_time, now),
                disabled=service is None or service.disabled, provider=p))
        return out

    async def filter_context(self, spec: RequestSpec) -> FilterContext:
        ctx = FilterContext()
        async with self.svc.store.read() as session:
            if spec.group_uuid:
                rows = (await session.execute(
                    select(Instance.host).join(ServerGroupMember,
                                               ServerGroupMember.instance_uuid == Instance.uuid)
                    .join(ServerGroup, ServerGroup.id == ServerGroupMember.group_id)
                    .where(ServerGroup.uuid == spec.group_uuid, Instance.deleted == false(),
                           Instance.host.is_not(None),
                           Instance.uuid != spec.instance_uuid))).scalars()
                ctx.group_hosts = dict(Counter(str(h) for h in rows))
            for hint, attr in (("same_host", "same_host"), ("different_host",
                                                             "different_host")):
                value = spec.scheduler_hints.get(hint)
                if not value:
                    continue
                uuids = [value] if isinstance(value, str) else [str(v) for v in value]
                found = {str(h) for h in (await session.execute(select(Instance.host).where(
                    Instance.uuid.in_(uuids), Instance.host.is_not(None)))).scalars()}
                setattr(ctx, attr, found)
        return ctx

    async def select_and_claim(self, spec: RequestSpec) -> HostState | None:
        """Filter, weigh, claim. The claimed host, or None when nothing fits."""
        candidates = filter_hosts(await self.load_hosts(), spec,
                                  ctx := await self.filter_context(spec))
        resources = spec.flavor.resources()
        for host in weigh(candidates, spec, ctx, self.svc.conf.weigher):
            if await placement.claim(self.svc.store, host.provider.id, spec.instance_uuid,
                                     resources, project_id=spec.project_id,
                                     user_id=spec.user_id):
                return host
            log.debug("claim on %s lost a race; trying the next host", host.node)
        return None

    async def schedule(self, spec: RequestSpec, request_id: str = "") -> str | None:
        """Flow step 5 for one instance. Returns the host it was sent to, or None."""
        if spec.migration_uuid is not None:
            return await self.schedule_resize(spec, request_id)
        store = self.svc.store
        await instance_actions.event(store, spec.instance_uuid, request_id, EVENT, "start")
        tried = list(spec.ignore_hosts)
        while True:
            host = await self.select_and_claim(spec.model_copy(update={"ignore_hosts": tried}))
            if host is None:
                if spec.last_failure:  # a reschedule with no host left
                    message, details = exhausted(spec.instance_uuid), spec.last_failure
                else:
                    message = NO_VALID_HOST + "There are not enough hosts available."
                    details = None
                await set_error(store, spec.instance_uuid, message, details=details,
                                task_states=[states.Task.SCHEDULING])
                await instance_actions.event(store, spec.instance_uuid, request_id, EVENT,
                                             "finish", result="Error",
                                             details="No valid host was found.")
                log.info("no valid host for %s", spec.instance_uuid)
                return None
            if not await self._bind(spec, host):
                await placement.remove_allocations(store, spec.instance_uuid)
                log.info("%s was deleted while being scheduled", spec.instance_uuid)
                return None
            try:
                await self.agents.build_and_run_instance(host.host, spec, host.node,
                                                         request_id)
            except StacklingError as exc:
                log.warning("cannot reach compute.%s (%s): trying another host", host.host, exc)
                await placement.remove_allocations(store, spec.instance_uuid)
                await self._unbind(spec)
                tried.append(host.host)
                continue
            await instance_actions.event(store, spec.instance_uuid, request_id, EVENT,
                                         "finish", result="Success")
            return host.host

    async def schedule_resize(self, spec: RequestSpec, request_id: str = "") -> str | None:
        """A resize: the old allocation moves to the migration, the new flavor is claimed
        for the instance (the same host may do), then the source agent starts the move."""
        store, uuid = self.svc.store, spec.instance_uuid
        assert spec.migration_uuid is not None
        await placement.move_allocations(store, uuid, spec.migration_uuid)
        await instance_actions.event(store, uuid, request_id, "conductor_migrate_server",
                                     "start")
        host = await self.select_and_claim(spec)
        if host is None:
            await resize.abandon(self.svc, uuid, spec.migration_uuid,
                                 NO_VALID_HOST + "There are not enough hosts available.")
            await instance_actions.event(store, uuid, request_id, "conductor_migrate_server",
                                         "finish", result="Error",
                                         details="No valid host was found.")
            return None
        async with store.write() as session:
            row = (await session.execute(select(Instance).where(
                Instance.uuid == uuid))).scalar_one()
            source, stopped = row.host, row.vm_state == states.STOPPED
            bound = await compare_and_swap(session, uuid,
                                           {"task_state": states.Task.RESIZE_MIGRATING},
                                           task_states=[states.Task.RESIZE_PREP])
            mig = (await session.execute(select(Migration).where(
                Migration.uuid == spec.migration_uuid))).scalar_one()
            mig.status = "migrating" if bound else "error"
            mig.dest_compute, mig.dest_node = host.host, host.node
        if not bound or source is None:
            await resize.abandon(self.svc, uuid, spec.migration_uuid,
                                 "The server changed while its resize was scheduled.")
            return None
        await self.agents.cast(source, ResizeInstance(
            instance_uuid=uuid, request_id=request_id, migration_uuid=spec.migration_uuid,
            source_host=source, dest_host=host.host, dest_node=host.node, flavor=spec.flavor,
            was_stopped=stopped))
        await instance_actions.event(store, uuid, request_id, "conductor_migrate_server",
                                     "finish", result="Success")
        return host.host

    async def _bind(self, spec: RequestSpec, host: HostState) -> bool:
        values: dict[str, Any] = {"host": host.host, "node": host.node}
        if spec.availability_zone is None:
            values["availability_zone"] = host.zone
        async with self.svc.store.write() as session:
            return await compare_and_swap(session, spec.instance_uuid, values,
                                          task_states=[states.Task.SCHEDULING])

    async def _unbind(self, spec: RequestSpec) -> None:
        async with self.svc.store.write() as session:
            await compare_and_swap(session, spec.instance_uuid, {"host": None, "node": None},
                                   task_states=[states.Task.SCHEDULING])
