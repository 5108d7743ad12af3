"""The scheduler: flow step 5 (DESIGN.md §1).

For each request spec: take the hosts from the in-memory view
(:class:`~stackling.compute.scheduler.host_cache.HostCache`: placement usage, service
liveness, zones), keep those every filter accepts (up to ``MAX_CANDIDATES``, as placement's
``max_placement_results`` bounds Nova's), rank them with the weighers, re-read the best one's
service, and claim the resources on it (:func:`stackling.compute.service.placement.claim_in`,
atomic). If a concurrent claim took the room first, try the next host. In the same
transaction, bind the instance to the host -- a compare-and-swap that fails if the server was
deleted meanwhile, which rolls the claim back -- and record the scheduling event; then cast
:class:`~stackling.compute.rpcapi.BuildAndRunInstance` to ``compute.<host>``.
No host, even after reloading the view: the server goes to ERROR with Nova's
"No valid host was found" fault. ``stackling_compute_schedule_seconds`` (Prometheus) times
each request from receipt to the cast.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from prometheus_client import Histogram
from sqlalchemy import false, select
from sqlalchemy.ext.asyncio import AsyncSession

from stackling.bus import Message, Subscription, Transport
from stackling.common.errors import StacklingError
from stackling.common.timeutils import utcnow
from stackling.compute import states
from stackling.compute.models import (
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
from stackling.compute.scheduler.filters import FilterContext, HostState
from stackling.compute.scheduler.host_cache import HostCache
from stackling.compute.scheduler.ranking import best_first
from stackling.compute.service import hosts, instance_actions, placement, resize
from stackling.compute.service.compute import ComputeService
from stackling.compute.service.instances import compare_and_swap, exhausted, set_error

log = logging.getLogger("stackling.compute.scheduler")

NO_VALID_HOST = "No valid host was found. "

EVENT = "conductor_schedule_and_build_instances"
#: how many passing hosts a request weighs at most (Nova: max_placement_results = 1000)
MAX_CANDIDATES = 1000

SCHEDULE_SECONDS = Histogram(
    "stackling_compute_schedule_seconds",
    "Time the scheduler spends on one request: filter, weigh, claim, bind, cast.",
    buckets=(0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05,
             0.075, 0.1, 0.25, 0.5, 1.0, 2.5))


class _Lost(Exception):
    """The claim lost a race; the transaction rolls back."""


class _Down(Exception):
    """The host's service went down or was disabled (or left the zone) since the cache
    saw it; the transaction rolls back."""


class _Deleted(Exception):
    """The bind found the instance deleted (or no longer scheduling); the claim rolls back."""


class Scheduler:
    def __init__(self, svc: ComputeService, bus: Transport, host: str = "") -> None:
        self.svc = svc
        self.bus = bus
        self.host = host
        self._heartbeat: asyncio.Task[None] | None = None
        self.agents = ComputeAgentAPI(bus)
        self._subscription: Subscription | None = None
        # a host silent for a heartbeat interval is noticed within one more
        self.cache = HostCache(svc, max_age=min(10.0, svc.conf.heartbeat_interval))

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
        await self.cache.close()

    async def _handle(self, message: Message, context: dict[str, Any]) -> None:
        if isinstance(message, ScheduleInstances):
            # one at a time within a request, so a group's members see each other
            for spec in message.specs:
                await self.schedule(spec, message.request_id)
        else:
            log.warning("scheduler: unexpected message %s", type(message).NAME)

    # -- the step --------------------------------------------------------------------------
    async def load_hosts(self) -> list[HostState]:
        """Every compute node with its placement usage, liveness and zone (as last seen)."""
        return await self.cache.current()

    async def filter_context(self, spec: RequestSpec) -> FilterContext:
        ctx = FilterContext()
        hints = spec.scheduler_hints
        if not (spec.group_uuid or hints.get("same_host") or hints.get("different_host")):
            return ctx  # nothing to read
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

    def select(self, spec: RequestSpec, ctx: FilterContext) -> Iterator[HostState]:
        """The hosts that pass every filter (at most ``MAX_CANDIDATES``), best first
        (lazily: see ``ranking``)."""
        return best_first(self.cache.candidates(spec.requested_host, MAX_CANDIDATES),
                          spec, ctx, self.svc.conf.weigher, MAX_CANDIDATES)

    async def select_and_claim(self, spec: RequestSpec, request_id: str | None = None,
                               started: datetime | None = None) -> HostState | None:
        """Filter, weigh, verify, claim. The claimed host, or None when nothing fits.
        With ``request_id`` (a build), the instance is bound to the host and the scheduling
        event recorded in the claim's transaction (:class:`_Deleted` if the instance was
        deleted meanwhile)."""
        ctx = await self.filter_context(spec)
        resources = spec.flavor.resources()
        await self.cache.current()
        for fresh in (False, True):
            if fresh:  # nothing fits the view: reload it before saying so
                await self.cache.refresh()
            for host in self.select(spec, ctx):
                try:
                    async with self.svc.store.write() as session:
                        # the host's service, read again where the claim is made
                        if not await self.cache.verify(session, host,
                                                       spec.availability_zone):
                            raise _Down
                        if not await placement.claim_in(
                                session, host.provider.id, spec.instance_uuid, resources,
                                project_id=spec.project_id, user_id=spec.user_id,
                                known=host.provider):
                            raise _Lost
                        if request_id is not None:
                            if not await self._bind(session, spec, host):
                                raise _Deleted
                            await instance_actions.event_in(
                                session, spec.instance_uuid, request_id, EVENT, "done",
                                result="Success", started=started)
                except _Down:
                    continue
                except _Lost:
                    log.debug("claim on %s lost a race; trying the next host", host.node)
                    continue
                return host
        return None

    async def schedule(self, spec: RequestSpec, request_id: str = "") -> str | None:
        """Flow step 5 for one instance. Returns the host it was sent to, or None."""
        t0 = time.perf_counter()
        try:
            return await self._schedule(spec, request_id)
        finally:
            SCHEDULE_SECONDS.observe(time.perf_counter() - t0)

    async def _schedule(self, spec: RequestSpec, request_id: str = "") -> str | None:
        if spec.migration_uuid is not None:
            return await self.schedule_resize(spec, request_id)
        store = self.svc.store
        started = utcnow()
        tried = list(spec.ignore_hosts)
        while True:
            try:
                host = await self.select_and_claim(
                    spec.model_copy(update={"ignore_hosts": tried}), request_id, started)
            except _Deleted:
                log.info("%s was deleted while being scheduled", spec.instance_uuid)
                return None
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
            try:
                await self.agents.build_and_run_instance(host.host, spec, host.node,
                                                         request_id)
            except StacklingError as exc:
                log.warning("cannot reach compute.%s (%s): trying another host", host.host, exc)
                await placement.remove_allocations(store, spec.instance_uuid)
                await self._unbind(spec)
                await instance_actions.event(store, spec.instance_uuid, request_id, EVENT,
                                             "finish", result="Error",
                                             details=f"compute.{host.host} unreachable")
                tried.append(host.host)
                continue
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

    async def _bind(self, session: AsyncSession, spec: RequestSpec, host: HostState) -> bool:
        values: dict[str, Any] = {"host": host.host, "node": host.node}
        if spec.availability_zone is None:
            values["availability_zone"] = host.zone
        return await compare_and_swap(session, spec.instance_uuid, values,
                                      task_states=[states.Task.SCHEDULING])

    async def _unbind(self, spec: RequestSpec) -> None:
        async with self.svc.store.write() as session:
            await compare_and_swap(session, spec.instance_uuid, {"host": None, "node": None},
                                   task_states=[states.Task.SCHEDULING])
