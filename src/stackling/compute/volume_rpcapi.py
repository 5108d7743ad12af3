"""Bus messages between compute's API service and an agent about volumes.

Attach and detach are *calls*: the API answers once the agent has plugged (or unplugged)
the volume, so ``server add volume`` returns with the volume in-use and a failure comes
back to the user instead of leaving a half-made attachment behind.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from stackling.bus import Message, Transport, register
from stackling.compute.rpcapi import compute_topic

#: an attach or detach waits this long for the agent (a PCI unplug needs the guest)
CALL_TIMEOUT = 120.0


@register
class AttachVolume(Message):
    """A call: export the reserved attachment to this host, plug it, complete it."""

    NAME: ClassVar[str] = "compute.agent.attach_volume"
    VERSION: ClassVar[str] = "1.0"
    instance_uuid: str
    volume_id: str
    attachment_id: str
    device: str | None = None
    request_id: str = ""


@register
class DetachVolume(Message):
    """A call: unplug the volume and delete its attachment (and so the export)."""

    NAME: ClassVar[str] = "compute.agent.detach_volume"
    VERSION: ClassVar[str] = "1.0"
    instance_uuid: str
    volume_id: str
    attachment_id: str | None = None
    request_id: str = ""


@register
class VolumeDone(Message):
    NAME: ClassVar[str] = "compute.agent.volume_done"
    VERSION: ClassVar[str] = "1.0"
    connection_info: dict[str, Any] = Field(default_factory=dict)


class VolumeAgentAPI:
    def __init__(self, bus: Transport, timeout: float = CALL_TIMEOUT) -> None:
        self.bus = bus
        self.timeout = timeout

    async def attach(self, host: str, message: AttachVolume) -> VolumeDone:
        return await self.bus.call(compute_topic(host), message, self.timeout,
                                   returns=VolumeDone)

    async def detach(self, host: str, message: DetachVolume) -> VolumeDone:
        return await self.bus.call(compute_topic(host), message, self.timeout,
                                   returns=VolumeDone)
