"""The conductor: the compute agents' only way to the database (flow step 6).

Agents have no database access; they call the conductor on the bus topic ``conductor``
with the messages of :mod:`stackling.compute.rpcapi` and it acts through the service layer:
state updates (always compare-and-swap), action events, faults, heartbeats, hypervisor
inventory, the end of a delete, and the decision after a failed build -- reschedule on
another host, or ERROR with a fault once the attempts are used up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import false, select
from sqlalchemy.ext.asyncio import AsyncSession

from stackling.bus import Message, Subscription, Transport
from stackling.common.errors import BadRequest, NotFound
from stackling.common.timeutils import utcnow
from stackling.compute import states
from stackling.compute.models import Instance
from stackling.compute.rpcapi import (
    CONDUCTOR_TOPIC,
    ActionEvent,
    BuildFailed,
    ConfirmingOnHost,
    ConfirmList,
    HostResources,
    InstanceFault,
    InstanceGet,
    InstanceInfo,
    InstanceList,
    InstancePasswordReply,
    InstancePasswordSet,
    InstanceReply,
    InstancesOnHost,
    InstanceTerminated,
    InstanceUpdate,
    MigrationDone,
    SchedulerAPI,
    ServiceReport,
)
from stackling.compute.service import (
    hosts,
    instance_actions,
    placement,
    resize,
    server_password,
    servers,
)
from stackling.compute.service.compute import ComputeService
from stackling.compute.service.instances import (
    add_fault,
    compare_and_swap,
    exhausted,
    metadata_of,
    read_row,
    set_error,
    to_info,
)

log = logging.getLogger("stackling.compute.conductor")


class _SwapLost(Exception):
    pass

#: what an agent may change through InstanceUpdate
UPDATABLE = {"vm_state", "task_state", "power_state", "progress", "launched_at", "host",
             "node"}
BUILD_TASKS: list[str | None] = [states.Task.SCHEDULING, states.Task.BLOCK_DEVICE_MAPPING,
                                 states.Task.NETWORKING, states.Task.SPAWNING]



class Conductor:
    def __init__(self, svc: ComputeService, bus: Transport, host: str = "") -> None:
        self.svc = svc
        self.bus = bus
        self.host = host
        self._heartbeat: asyncio.Task[None] | None = None
        self.scheduler = SchedulerAPI(bus)
        self._subscription: Subscription | None = None
        # heartbeats of services already on record are written in batches (one UPDATE per
        # flush instead of one transaction per beat); a first beat is written at once
        self._beats: set[tuple[str, str]] = set()
        self._on_record: set[tuple[str, str]] = set()
        self._flusher: asyncio.Task[None] | None = None
        self.flush_interval = min(1.0, svc.conf.heartbeat_interval / 4)
        self._handlers: dict[type[Message], Any] = {
            InstanceGet: self.instance_get, InstanceUpdate: self.instance_update,
            InstancePasswordSet: self.instance_password_set,
            ActionEvent: self.action_event, BuildFailed: self.build_failed,
            InstanceFault: self.instance_fault, InstanceTerminated: self.instance_terminated,
            ServiceReport: self.service_report, HostResources: self.host_resources,
            InstancesOnHost: self.instances_on_host, MigrationDone: self.migration_done,
            ConfirmingOnHost: self.confirming_on_host,
        }

    async def start(self) -> None:
        self._subscription = await self.bus.serve(CONDUCTOR_TOPIC, self._handle)
        self._flusher = asyncio.create_task(self._flush_beats())
        if self.host:
            self._heartbeat = asyncio.create_task(hosts.heartbeats(
                self.svc.store, self.host, "nova-conductor", CONDUCTOR_TOPIC,
                self.svc.conf.heartbeat_interval))

    async def stop(self) -> None:
        for task in (self._heartbeat, self._flusher):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._subscription is not None:
            await self._subscription.cancel()

    async def _handle(self, message: Message, context: dict[str, Any]) -> Message | None:
        handler = self._handlers.get(type(message))
        if handler is None:
            raise BadRequest(f"the conductor does not handle {type(message).NAME}")
        result: Message | None = await handler(message)
        return result

    async def _info(self, uuid: str) -> InstanceReply:
        async with self.svc.store.read() as session:
            try:
                row = await read_row(session, uuid)
            except NotFound:
                return InstanceReply(instance=None, updated=False)
            meta = await metadata_of(session, [uuid])
            return InstanceReply(instance=to_info(row, meta.get(uuid)))

    async def instance_get(self, m: InstanceGet) -> InstanceReply:
        return await self._info(m.instance_uuid)

    async def instance_password_set(self, m: InstancePasswordSet) -> InstancePasswordReply:
        stored = await server_password.set_once(self.svc.store, m.instance_uuid, m.password)
        return InstancePasswordReply(stored=bool(stored), found=stored is not None)

    async def _instance_update(self, m: InstanceUpdate) -> InstanceReply:
        unknown = set(m.values) - UPDATABLE
        if unknown:
            raise BadRequest(f"instance fields not updatable by agents: {sorted(unknown)}")
        values = dict(m.values)
        if values.get("launched_at") == "now":
            values["launched_at"] = utcnow()
        # one transaction: the swap, the events that go with it, the answer
        async with self.svc.store.write() as session:
            for e in m.events:
                if e.phase == "start":
                    await self._event_in(session, e)
            won = await compare_and_swap(session, m.instance_uuid, values,
                                         task_states=m.expected_task_states)
            if not won:
                raise _SwapLost  # roll back the start events
            for e in m.events:
                if e.phase != "start":
                    await self._event_in(session, e)
            info = await self._info_in(session, m.instance_uuid) if m.want_instance else None
        return InstanceReply(instance=info, updated=True)

    async def instance_update(self, m: InstanceUpdate) -> InstanceReply:
        try:
            return await self._instance_update(m)
        except _SwapLost:
            if not m.want_instance:
                return InstanceReply(instance=None, updated=False)
            reply = await self._info(m.instance_uuid)
            return InstanceReply(instance=reply.instance, updated=False)

    @staticmethod
    async def _event_in(session: AsyncSession, e: ActionEvent) -> None:
        await instance_actions.event_in(session, e.instance_uuid, e.request_id, e.event,
                                        e.phase, result=e.result, details=e.details,
                                        host=e.host or None, started=e.started)

    @staticmethod
    async def _info_in(session: AsyncSession, uuid: str) -> InstanceInfo | None:
        try:
            row = await read_row(session, uuid)
        except NotFound:
            return None
        meta = await metadata_of(session, [uuid])
        return to_info(row, meta.get(uuid))

    async def action_event(self, m: ActionEvent) -> None:
        await instance_actions.event(self.svc.store, m.instance_uuid, m.request_id, m.event,
                                     m.phase, result=m.result, details=m.details,
                                     host=m.host or None, started=m.started)

    async def build_failed(self, m: BuildFailed) -> None:
        """Flow step 8's failure branch: free the claim, then reschedule or ERROR."""
        spec = m.spec
        await placement.remove_allocations(self.svc.store, spec.instance_uuid)
        max_attempts = self.svc.conf.max_attempts
        if m.retryable and spec.attempt < max_attempts:
            async with self.svc.store.write() as session:
                again = await compare_and_swap(
                    session, spec.instance_uuid,
                    {"task_state": states.Task.SCHEDULING, "host": None, "node": None,
                     "vm_state": states.BUILDING},
                    task_states=BUILD_TASKS)
            if again:
                log.info("rescheduling %s after a failed build on %s (attempt %d of %d)",
                         spec.instance_uuid, m.host, spec.attempt + 1, max_attempts)
                await self.scheduler.schedule_instances([spec.model_copy(update={
                    "attempt": spec.attempt + 1,
                    "ignore_hosts": [*spec.ignore_hosts, m.host],
                    "last_failure": m.reason})], m.request_id)
            return
        if m.retryable:
            message, details = exhausted(spec.instance_uuid), m.reason
        else:
            message, details = m.reason, None
        await set_error(self.svc.store, spec.instance_uuid, message, details=details,
                        host=m.host, task_states=BUILD_TASKS)

    async def instance_fault(self, m: InstanceFault) -> None:
        if m.set_error:
            await set_error(self.svc.store, m.instance_uuid, m.message, code=m.code,
                            details=m.details, host=m.host or None)
            return
        async with self.svc.store.write() as session:
            add_fault(session, m.instance_uuid, m.message, code=m.code, details=m.details,
                      host=m.host or None)

    async def instance_terminated(self, m: InstanceTerminated) -> None:
        await servers.finish_delete(self.svc, m.instance_uuid,
                                    events=[self._event_in_for(e) for e in m.events])

    def _event_in_for(self, e: ActionEvent) -> Callable[[AsyncSession], Awaitable[None]]:
        async def record(session: AsyncSession) -> None:
            await self._event_in(session, e)
        return record

    async def migration_done(self, m: MigrationDone) -> None:
        await resize.finished(self.svc, m.instance_uuid, m.migration_uuid, m.status,
                              m.power_state, m.reason, m.host or None)

    async def service_report(self, m: ServiceReport) -> None:
        key = (m.host, m.binary)
        if key in self._on_record:
            self._beats.add(key)
            return
        await hosts.report(self.svc.store, m.host, m.binary, m.topic)
        self._on_record.add(key)

    async def _flush_beats(self) -> None:
        while True:
            await asyncio.sleep(self.flush_interval)
            beats, self._beats = self._beats, set()
            try:
                # a record deleted meanwhile is made again by the service's next beat
                self._on_record -= await hosts.report_many(self.svc.store, beats)
            except Exception as exc:  # a database hiccup must not end the loop
                log.warning("writing %d heartbeats failed: %s", len(beats), exc)
                self._beats |= beats

    async def host_resources(self, m: HostResources) -> None:
        await hosts.update_node(self.svc.store, hosts.NodeReport(
            host=m.host, node=m.node, hypervisor_type=m.hypervisor_type,
            hypervisor_version=m.hypervisor_version, vcpus=m.vcpus, memory_mb=m.memory_mb,
            local_gb=m.local_gb, host_ip=m.host_ip, cpu_info=dict(m.cpu_info)),
            self.svc.conf)

    async def confirming_on_host(self, m: ConfirmingOnHost) -> ConfirmList:
        return ConfirmList(confirms=await resize.confirming_on(self.svc, m.host))

    async def instances_on_host(self, m: InstancesOnHost) -> InstanceList:
        async with self.svc.store.read() as session:
            rows = list((await session.execute(select(Instance).where(
                Instance.host == m.host, Instance.deleted == false()))).scalars())
            meta = await metadata_of(session, [r.uuid for r in rows])
        return InstanceList(instances=[to_info(r, meta.get(r.uuid)) for r in rows])
