"""The compute RPC surface: every message the compute processes exchange on the bus, and the
typed clients that send them.

Who talks to whom (DESIGN.md §1, steps 4-8)::

    compute-api --ScheduleInstances (cast)--> "scheduler"
    scheduler   --BuildAndRunInstance (cast)--> "compute.<host>"
    compute-api --StopInstance, RebootInstance, ... (cast)--> "compute.<host>"
    agent       --InstanceGet/InstanceUpdate/... (call)--> "conductor"  (agents have no DB)
    conductor   --ScheduleInstances (cast)--> "scheduler"  (a reschedule after a failed build)

The message classes ARE the interface: a field added in a minor version must have a default;
anything else is a major bump (see :mod:`stackling.bus.message`). Payload models shared by
several messages (:class:`FlavorInfo`, :class:`InstanceInfo`, :class:`RequestSpec`) follow the
same rule. Nothing here touches a database, so agents import this module freely.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from stackling.bus import Message, Transport, register
from stackling.common.context import RequestContext

SCHEDULER_TOPIC = "scheduler"
CONDUCTOR_TOPIC = "conductor"


def compute_topic(host: str) -> str:
    return f"compute.{host}"


class _Payload(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class FlavorInfo(_Payload):
    """The flavor as copied into the instance at boot (Nova's embedded flavor)."""

    flavorid: str
    name: str
    vcpus: int
    memory_mb: int
    root_gb: int = 0
    ephemeral_gb: int = 0
    swap: int = 0
    rxtx_factor: float = 1.0
    is_public: bool = True
    description: str | None = None
    extra_specs: dict[str, str] = Field(default_factory=dict)

    def resources(self) -> dict[str, int]:
        """What a server of this flavor claims in placement."""
        disk = self.root_gb + self.ephemeral_gb + (self.swap + 1023) // 1024
        return {"VCPU": self.vcpus, "MEMORY_MB": self.memory_mb, "DISK_GB": disk}


class InstanceInfo(_Payload):
    """What an agent may know about an instance (no database row crosses the bus)."""

    uuid: str
    name: str  # the user's display name
    instance_name: str  # the hypervisor's name, "instance-0000002a"
    hostname: str = ""
    project_id: str
    user_id: str
    host: str | None = None
    node: str | None = None
    vm_state: str
    task_state: str | None = None
    power_state: int = 0
    flavor: FlavorInfo
    image_ref: str = ""
    key_data: str | None = None
    user_data: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    launched_at: str | None = None
    deleted: bool = False
    password: str = ""  # what the guest posted to the metadata service (os-server-password)


class RequestSpec(_Payload):
    """What the scheduler needs to place one instance (built by compute-api, kept in the
    ``request_specs`` table for reschedules, resize and rebuild)."""

    instance_uuid: str
    project_id: str
    user_id: str
    flavor: FlavorInfo
    image_ref: str = ""
    availability_zone: str | None = None
    group_uuid: str | None = None
    group_policy: str | None = None
    group_rules: dict[str, Any] = Field(default_factory=dict)
    scheduler_hints: dict[str, Any] = Field(default_factory=dict)
    requested_host: str | None = None
    requested_node: str | None = None
    ignore_hosts: list[str] = Field(default_factory=list)
    attempt: int = 1  # 1 for the first try; a reschedule increments it
    last_failure: str | None = None  # why the previous attempt failed (for the fault)
    migration_uuid: str | None = None  # a resize: place ``flavor`` for this migration
    # the image as compute-api read it (the caller's view, active): the agent builds from
    # it instead of asking image-api again (Nova's RequestSpec.image); the driver still
    # fetches the data itself. Keys: id, name, disk_format, container_format, size,
    # min_ram, min_disk, properties.
    image: dict[str, Any] | None = None
    # the ports to give the instance, as compute-api resolved the request's ``networks``
    # (empty: none): each ``{"network_id", "port_id", "fixed_ip", "tag"}``; a ``port_id``
    # is the user's own port (bound, not created), otherwise the agent creates one
    requested_networks: list[dict[str, Any]] = Field(default_factory=list)
    # the volumes compute-api made and reserved (boot from volume): each ``{"volume_id",
    # "attachment_id", "boot_index", "device_name"}``; the agent boots from boot_index 0
    block_devices: list[dict[str, Any]] = Field(default_factory=list)


# -- scheduler ----------------------------------------------------------------------------------
@register
class ScheduleInstances(Message):
    """Flow step 5: pick a host for each spec, claim its resources, cast the build."""

    NAME: ClassVar[str] = "compute.scheduler.schedule_instances"
    VERSION: ClassVar[str] = "1.0"
    specs: list[RequestSpec]
    request_id: str = ""


# -- compute agent --------------------------------------------------------------------------
@register
class BuildAndRunInstance(Message):
    """Flow steps 6-8, on ``compute.<host>``: the resources are claimed on ``node``."""

    NAME: ClassVar[str] = "compute.agent.build_and_run_instance"
    VERSION: ClassVar[str] = "1.0"
    spec: RequestSpec
    node: str
    request_id: str = ""


class _InstanceCast(Message):
    instance_uuid: str
    request_id: str = ""


@register
class TerminateInstance(_InstanceCast):
    NAME: ClassVar[str] = "compute.agent.terminate_instance"
    VERSION: ClassVar[str] = "1.1"
    #: the volumes to release once the VM is gone: ``{"volume_id", "attachment_id",
    #: "delete_on_termination"}``
    volumes: list[dict[str, Any]] = Field(default_factory=list)
    #: the server as the delete left it (1.1; as Nova's API sends the instance along): the
    #: agent asks the conductor only when it is missing
    instance: InstanceInfo | None = None


@register
class StopInstance(_InstanceCast):
    NAME: ClassVar[str] = "compute.agent.stop_instance"
    VERSION: ClassVar[str] = "1.0"


@register
class StartInstance(_InstanceCast):
    NAME: ClassVar[str] = "compute.agent.start_instance"
    VERSION: ClassVar[str] = "1.0"


@register
class RebootInstance(_InstanceCast):
    NAME: ClassVar[str] = "compute.agent.reboot_instance"
    VERSION: ClassVar[str] = "1.0"
    reboot_type: str = "SOFT"


@register
class PauseInstance(_InstanceCast):
    NAME: ClassVar[str] = "compute.agent.pause_instance"
    VERSION: ClassVar[str] = "1.0"


@register
class UnpauseInstance(_InstanceCast):
    NAME: ClassVar[str] = "compute.agent.unpause_instance"
    VERSION: ClassVar[str] = "1.0"


@register
class SuspendInstance(_InstanceCast):
    NAME: ClassVar[str] = "compute.agent.suspend_instance"
    VERSION: ClassVar[str] = "1.0"


@register
class ResumeInstance(_InstanceCast):
    NAME: ClassVar[str] = "compute.agent.resume_instance"
    VERSION: ClassVar[str] = "1.0"


@register
class RebuildInstance(_InstanceCast):
    """Re-create the VM from ``image_ref`` (already recorded on the instance); a server
    that was stopped ends stopped again."""

    NAME: ClassVar[str] = "compute.agent.rebuild_instance"
    VERSION: ClassVar[str] = "1.0"
    image_ref: str
    was_stopped: bool = False
    #: the data volumes attached now (``volume_id``, ``attachment_id``): plugged into the
    #: new guest again
    volumes: list[dict[str, str]] = Field(default_factory=list)


class _MigrationCast(_InstanceCast):
    migration_uuid: str
    source_host: str
    dest_host: str
    dest_node: str
    flavor: FlavorInfo  # the flavor to end up with
    was_stopped: bool = False


@register
class ResizeInstance(_MigrationCast):
    """On the source host: stop the guest and keep its disks (for a revert), then hand over
    to the destination (:class:`FinishResize`), which may be this same host."""

    NAME: ClassVar[str] = "compute.agent.resize_instance"
    VERSION: ClassVar[str] = "1.0"


@register
class FinishResize(_MigrationCast):
    """On the destination host: start the guest with the new flavor."""

    NAME: ClassVar[str] = "compute.agent.finish_resize"
    VERSION: ClassVar[str] = "1.0"


@register
class ConfirmResize(_MigrationCast):
    """On the source host: drop the disks kept for a revert."""

    NAME: ClassVar[str] = "compute.agent.confirm_resize"
    VERSION: ClassVar[str] = "1.0"


@register
class RevertResize(_MigrationCast):
    """On the destination host (``dest_host``): remove the resized guest, then the source
    restores the old one (:class:`FinishRevertResize`). ``flavor`` is the old flavor."""

    NAME: ClassVar[str] = "compute.agent.revert_resize"
    VERSION: ClassVar[str] = "1.0"


@register
class FinishRevertResize(_MigrationCast):
    NAME: ClassVar[str] = "compute.agent.finish_revert_resize"
    VERSION: ClassVar[str] = "1.0"


@register
class MigrationDone(Message):
    """A resize step finished (``status``: finished, confirmed, reverted or error): the
    conductor moves the instance (host, node, flavor, states) and the allocations in one
    go."""

    NAME: ClassVar[str] = "compute.conductor.migration_done"
    VERSION: ClassVar[str] = "1.0"
    instance_uuid: str
    migration_uuid: str
    status: str
    power_state: int = 0
    reason: str | None = None
    host: str = ""


@register
class SnapshotInstance(_InstanceCast):
    """Upload the instance's disk into the (queued) image ``image_id``."""

    NAME: ClassVar[str] = "compute.agent.snapshot_instance"
    VERSION: ClassVar[str] = "1.0"
    image_id: str
    # createBackup: after the upload keep only the newest ``rotation`` backups of this type
    backup_type: str | None = None
    rotation: int | None = None


@register
class ExternalEvent(_InstanceCast):
    """An event another service reported for the instance (``network-vif-plugged`` from
    the network service, ``power-update``, ...). Agents wake whoever waits for it."""

    NAME: ClassVar[str] = "compute.agent.external_event"
    VERSION: ClassVar[str] = "1.0"
    name: str
    status: str = "completed"
    tag: str | None = None


@register
class AttachInterface(_InstanceCast):
    """A call (``os-interface`` attach): give the running instance one more port and hot-plug
    it. ``request``: ``{"network_id", "port_id", "fixed_ip", "tag"}`` as compute-api
    resolved it. The reply is :class:`InterfaceAttached`."""

    NAME: ClassVar[str] = "compute.agent.attach_interface"
    VERSION: ClassVar[str] = "1.0"
    request: dict[str, Any]


@register
class DetachInterface(_InstanceCast):
    """A call: unplug the port and give it back (a port compute created is deleted). The
    reply is :class:`InterfaceAttached` with the port as it was."""

    NAME: ClassVar[str] = "compute.agent.detach_interface"
    VERSION: ClassVar[str] = "1.0"
    port_id: str


@register
class InterfaceAttached(Message):
    NAME: ClassVar[str] = "compute.agent.interface_attached"
    VERSION: ClassVar[str] = "1.0"
    port: dict[str, Any] = Field(default_factory=dict)


@register
class VolumeSnapshotCreate(_InstanceCast):
    """A volume service whose backend keeps volumes as files asks the hypervisor to snapshot
    the attached volume ``volume_id`` (Nova's assisted volume snapshots); a cast."""

    NAME: ClassVar[str] = "compute.agent.volume_snapshot_create"
    VERSION: ClassVar[str] = "1.0"
    volume_id: str
    create_info: dict[str, Any]


@register
class VolumeSnapshotDelete(_InstanceCast):
    NAME: ClassVar[str] = "compute.agent.volume_snapshot_delete"
    VERSION: ClassVar[str] = "1.0"
    volume_id: str
    snapshot_id: str
    delete_info: dict[str, Any]


@register
class GetDiagnostics(_InstanceCast):
    """A call: the reply is :class:`Diagnostics`."""

    NAME: ClassVar[str] = "compute.agent.get_diagnostics"
    VERSION: ClassVar[str] = "1.0"


@register
class Diagnostics(Message):
    NAME: ClassVar[str] = "compute.agent.diagnostics"
    VERSION: ClassVar[str] = "1.0"
    data: dict[str, Any]


@register
class GetConsoleOutput(_InstanceCast):
    """A call: the reply is :class:`ConsoleOutput`."""

    NAME: ClassVar[str] = "compute.agent.get_console_output"
    VERSION: ClassVar[str] = "1.0"
    length: int | None = None


@register
class GetConsoleConnect(_InstanceCast):
    """A call: where a console proxy on this host connects to the VM's ``vnc`` or
    ``serial`` console; the reply is :class:`ConsoleConnect`."""

    NAME: ClassVar[str] = "compute.agent.get_console_connect"
    VERSION: ClassVar[str] = "1.0"
    kind: str = "vnc"


@register
class ConsoleConnect(Message):
    NAME: ClassVar[str] = "compute.agent.console_connect"
    VERSION: ClassVar[str] = "1.0"
    path: str  # a unix socket on the agent's host


@register
class ConsoleOutput(Message):
    NAME: ClassVar[str] = "compute.agent.console_output"
    VERSION: ClassVar[str] = "1.0"
    output: str


# -- conductor (the agents' only way to the database) -----------------------------------------
@register
class InstanceGet(Message):
    NAME: ClassVar[str] = "compute.conductor.instance_get"
    VERSION: ClassVar[str] = "1.0"
    instance_uuid: str


@register
class InstancePasswordSet(Message):
    """The metadata service stores the password a guest posted (once: see
    :mod:`stackling.compute.service.server_password`)."""

    NAME: ClassVar[str] = "compute.conductor.instance_password_set"
    VERSION: ClassVar[str] = "1.0"
    instance_uuid: str
    password: str


@register
class InstancePasswordReply(Message):
    """``stored`` is False when a password was set already; ``found`` False when the
    instance does not exist."""

    NAME: ClassVar[str] = "compute.conductor.instance_password"
    VERSION: ClassVar[str] = "1.0"
    stored: bool = False
    found: bool = True


@register
class InstanceReply(Message):
    """The reply to :class:`InstanceGet` and :class:`InstanceUpdate`. ``instance`` is None when
    the instance does not exist (or, for an update, when it is deleted)."""

    NAME: ClassVar[str] = "compute.conductor.instance"
    VERSION: ClassVar[str] = "1.0"
    instance: InstanceInfo | None = None
    updated: bool = True  # False: the compare-and-swap found another task_state


@register
class InstanceUpdate(Message):
    """Compare-and-swap update of an instance's states. ``values`` may set vm_state,
    task_state, power_state, progress, launched_at ("now"), host, node. The update applies
    only while ``task_state`` is one of ``expected_task_states`` (when given)."""

    NAME: ClassVar[str] = "compute.conductor.instance_update"
    VERSION: ClassVar[str] = "1.1"
    instance_uuid: str
    values: dict[str, Any]
    expected_task_states: list[str | None] | None = None
    host: str = ""
    # 1.1: action events recorded in the same transaction, only when the swap wins
    # (start events before the update, finish events after it)
    events: list[ActionEvent] = []
    want_instance: bool = True  # 1.1: False: reply with ``updated`` only


@register
class ActionEvent(Message):
    """Start or finish an event of the instance action the API recorded for ``request_id``
    (``GET /servers/{id}/os-instance-actions/{request_id}`` shows them)."""

    NAME: ClassVar[str] = "compute.conductor.action_event"
    VERSION: ClassVar[str] = "1.1"
    instance_uuid: str
    request_id: str
    event: str
    #: "start" | "finish" | "done" (1.1: the whole event at once, from ``started`` to now)
    phase: str
    result: str | None = None  # "Success" | "Error" on finish
    details: str | None = None
    host: str = ""
    started: datetime | None = None  # 1.1, with "done"


@register
class BuildFailed(Message):
    """A build on ``host`` failed and the agent cleaned up what it made. The conductor frees
    the claim, then reschedules (``retryable`` and attempts left) or sets ERROR + fault."""

    NAME: ClassVar[str] = "compute.conductor.build_failed"
    VERSION: ClassVar[str] = "1.0"
    spec: RequestSpec
    host: str
    reason: str
    retryable: bool = True
    request_id: str = ""


@register
class InstanceFault(Message):
    """Record a fault and (optionally) put the instance in ERROR."""

    NAME: ClassVar[str] = "compute.conductor.instance_fault"
    VERSION: ClassVar[str] = "1.0"
    instance_uuid: str
    message: str
    code: int = 500
    details: str | None = None
    host: str = ""
    set_error: bool = True


@register
class InstanceTerminated(Message):
    """The agent destroyed the VM: the conductor frees the allocation and soft-deletes the
    instance."""

    NAME: ClassVar[str] = "compute.conductor.instance_terminated"
    VERSION: ClassVar[str] = "1.1"
    instance_uuid: str
    host: str = ""
    events: list[ActionEvent] = []  # 1.1: recorded in the delete's transaction


@register
class ServiceReport(Message):
    """An agent's heartbeat; creates the service record on the first report."""

    NAME: ClassVar[str] = "compute.conductor.service_report"
    VERSION: ClassVar[str] = "1.0"
    host: str
    binary: str
    topic: str


@register
class HostResources(Message):
    """What a hypervisor offers; the conductor keeps the compute node and its placement
    inventory in line with it."""

    NAME: ClassVar[str] = "compute.conductor.host_resources"
    VERSION: ClassVar[str] = "1.0"
    host: str
    node: str
    hypervisor_type: str
    hypervisor_version: int = 1
    vcpus: int
    memory_mb: int
    local_gb: int
    host_ip: str | None = None
    cpu_info: dict[str, Any] = Field(default_factory=dict)


@register
class InstancesOnHost(Message):
    NAME: ClassVar[str] = "compute.conductor.instances_on_host"
    VERSION: ClassVar[str] = "1.0"
    host: str


@register
class InstanceList(Message):
    NAME: ClassVar[str] = "compute.conductor.instance_list"
    VERSION: ClassVar[str] = "1.0"
    instances: list[InstanceInfo] = Field(default_factory=list)


@register
class ConfirmingOnHost(Message):
    """The resizes whose confirm waits on ``host`` (the source): an agent asks on restart,
    for a :class:`ConfirmResize` it lost by stopping in the middle of it."""

    NAME: ClassVar[str] = "compute.conductor.confirming_on_host"
    VERSION: ClassVar[str] = "1.0"
    host: str


@register
class ConfirmList(Message):
    NAME: ClassVar[str] = "compute.conductor.confirm_list"
    VERSION: ClassVar[str] = "1.0"
    confirms: list[ConfirmResize] = Field(default_factory=list)


# -- typed clients --------------------------------------------------------------------------
class SchedulerAPI:
    def __init__(self, bus: Transport) -> None:
        self.bus = bus

    async def schedule_instances(self, specs: list[RequestSpec], request_id: str = "",
                                 context: RequestContext | None = None) -> None:
        await self.bus.cast(SCHEDULER_TOPIC, ScheduleInstances(specs=specs,
                                                               request_id=request_id),
                            context=context)


class ComputeAgentAPI:
    """Casts to the agent of one host."""

    def __init__(self, bus: Transport) -> None:
        self.bus = bus

    async def build_and_run_instance(self, host: str, spec: RequestSpec, node: str,
                                     request_id: str = "") -> None:
        await self.bus.cast(compute_topic(host), BuildAndRunInstance(
            spec=spec, node=node, request_id=request_id))

    async def cast(self, host: str, message: Message) -> None:
        await self.bus.cast(compute_topic(host), message)

    async def get_diagnostics(self, host: str, instance_uuid: str,
                              timeout: float = 30.0) -> dict[str, Any]:  # noqa: ASYNC109
        reply = await self.bus.call(compute_topic(host), GetDiagnostics(
            instance_uuid=instance_uuid), timeout, returns=Diagnostics)
        return dict(reply.data)

    async def attach_interface(self, host: str, instance_uuid: str, request: dict[str, Any],
                               request_id: str = "", timeout: float = 330.0  # noqa: ASYNC109
                               ) -> dict[str, Any]:
        """The new port (Neutron's body); the agent waits for its vif-plugged event."""
        reply = await self.bus.call(compute_topic(host), AttachInterface(
            instance_uuid=instance_uuid, request=request, request_id=request_id), timeout,
            returns=InterfaceAttached)
        return dict(reply.port)

    async def detach_interface(self, host: str, instance_uuid: str, port_id: str,
                               request_id: str = "", timeout: float = 60.0  # noqa: ASYNC109
                               ) -> dict[str, Any]:
        reply = await self.bus.call(compute_topic(host), DetachInterface(
            instance_uuid=instance_uuid, port_id=port_id, request_id=request_id), timeout,
            returns=InterfaceAttached)
        return dict(reply.port)

    async def get_console_output(self, host: str, instance_uuid: str, length: int | None,
                                 timeout: float = 30.0) -> str:  # noqa: ASYNC109
        reply = await self.bus.call(compute_topic(host), GetConsoleOutput(
            instance_uuid=instance_uuid, length=length), timeout, returns=ConsoleOutput)
        return reply.output

    async def get_console_connect(self, host: str, instance_uuid: str, kind: str,
                                  timeout: float = 30.0) -> str:  # noqa: ASYNC109
        reply = await self.bus.call(compute_topic(host), GetConsoleConnect(
            instance_uuid=instance_uuid, kind=kind), timeout, returns=ConsoleConnect)
        return reply.path


class ConductorAPI:
    """What an agent may ask of the database, over the bus."""

    def __init__(self, bus: Transport, host: str, timeout: float | None = None) -> None:
        self.bus = bus
        self.host = host
        self.timeout = timeout

    async def instance_get(self, instance_uuid: str) -> InstanceInfo | None:
        reply = await self.bus.call(CONDUCTOR_TOPIC, InstanceGet(instance_uuid=instance_uuid),
                                    self.timeout, returns=InstanceReply)
        return reply.instance

    async def instance_password_set(self, instance_uuid: str, password: str
                                    ) -> InstancePasswordReply:
        return await self.bus.call(CONDUCTOR_TOPIC, InstancePasswordSet(
            instance_uuid=instance_uuid, password=password), self.timeout,
            returns=InstancePasswordReply)

    async def instance_update(self, instance_uuid: str, values: dict[str, Any],
                              expected_task_states: list[str | None] | None = None,
                              events: list[ActionEvent] | None = None,
                              want_instance: bool = True) -> InstanceReply:
        return await self.bus.call(CONDUCTOR_TOPIC, InstanceUpdate(
            instance_uuid=instance_uuid, values=values,
            expected_task_states=expected_task_states, host=self.host,
            events=events or [], want_instance=want_instance), self.timeout,
            returns=InstanceReply)

    def event(self, instance_uuid: str, request_id: str, event: str, phase: str,
              result: str | None = None, details: str | None = None, *,
              started: datetime | None = None) -> list[ActionEvent]:
        """An event to send along with an update (none without a request id)."""
        if not request_id:
            return []
        return [ActionEvent(instance_uuid=instance_uuid, request_id=request_id, event=event,
                            phase=phase, result=result, details=details, host=self.host,
                            started=started)]

    async def action_event(self, instance_uuid: str, request_id: str, event: str, phase: str,
                           result: str | None = None, details: str | None = None,
                           started: datetime | None = None) -> None:
        if not request_id:
            return
        await self.bus.call(CONDUCTOR_TOPIC, ActionEvent(
            instance_uuid=instance_uuid, request_id=request_id, event=event, phase=phase,
            result=result, details=details, host=self.host, started=started), self.timeout)

    async def build_failed(self, spec: RequestSpec, reason: str, retryable: bool,
                           request_id: str = "") -> None:
        await self.bus.call(CONDUCTOR_TOPIC, BuildFailed(
            spec=spec, host=self.host, reason=reason, retryable=retryable,
            request_id=request_id), self.timeout)

    async def instance_fault(self, instance_uuid: str, message: str, code: int = 500,
                             details: str | None = None, set_error: bool = True) -> None:
        await self.bus.call(CONDUCTOR_TOPIC, InstanceFault(
            instance_uuid=instance_uuid, message=message, code=code, details=details,
            host=self.host, set_error=set_error), self.timeout)

    async def migration_done(self, instance_uuid: str, migration_uuid: str, status: str,
                             power_state: int = 0, reason: str | None = None) -> None:
        await self.bus.call(CONDUCTOR_TOPIC, MigrationDone(
            instance_uuid=instance_uuid, migration_uuid=migration_uuid, status=status,
            power_state=power_state, reason=reason, host=self.host), self.timeout)

    async def instance_terminated(self, instance_uuid: str,
                                  events: list[ActionEvent] | None = None) -> None:
        await self.bus.call(CONDUCTOR_TOPIC, InstanceTerminated(
            instance_uuid=instance_uuid, host=self.host, events=events or []), self.timeout)

    async def service_report(self, binary: str, topic: str) -> None:
        await self.bus.call(CONDUCTOR_TOPIC, ServiceReport(host=self.host, binary=binary,
                                                           topic=topic), self.timeout)

    async def host_resources(self, report: HostResources) -> None:
        await self.bus.call(CONDUCTOR_TOPIC, report, self.timeout)

    async def instances_on_host(self) -> list[InstanceInfo]:
        reply = await self.bus.call(CONDUCTOR_TOPIC, InstancesOnHost(host=self.host),
                                    self.timeout, returns=InstanceList)
        return reply.instances

    async def confirming_on_host(self) -> list[ConfirmResize]:
        reply = await self.bus.call(CONDUCTOR_TOPIC, ConfirmingOnHost(host=self.host),
                                    self.timeout, returns=ConfirmList)
        return reply.confirms
