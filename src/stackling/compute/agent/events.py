"""An instance action event as the agent reports it: shown as started only once it has run
for a moment.

Nova's compute records an event's start when a step begins and its finish when it ends, two
conductor writes. Most steps of the fake driver, and a delete on any driver, end within
milliseconds, so :class:`EventSpan` reports the start only if the step is still running
after ``show_after`` seconds; a step that ends before that is recorded whole, start time
included, with its finish (one write). ``os-instance-actions`` shows the same events either
way once the step is over, and a long step still shows as started while it runs.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from stackling.common.errors import StacklingError
from stackling.common.timeutils import utcnow
from stackling.compute.rpcapi import ActionEvent, ConductorAPI

log = logging.getLogger("stackling.compute.agent")

#: a step still running after this many seconds is shown as started
SHOW_AFTER = 1.0


class EventSpan:
    def __init__(self, conductor: ConductorAPI, instance_uuid: str, request_id: str,
                 event: str, show_after: float = SHOW_AFTER) -> None:
        self.conductor = conductor
        self.instance_uuid = instance_uuid
        self.request_id = request_id
        self.event = event
        self.started: datetime = utcnow()
        self._announcing = False  # the start is on its way: it must not be cancelled
        self._task: asyncio.Task[None] | None = None
        if request_id:
            self._task = asyncio.create_task(self._announce(show_after))

    async def _announce(self, delay: float) -> None:
        await asyncio.sleep(delay)
        self._announcing = True
        try:
            await self.conductor.action_event(self.instance_uuid, self.request_id,
                                              self.event, "start")
        except StacklingError as exc:  # the finish still records the whole event
            log.warning("could not show %s of %s as started: %s", self.event,
                        self.instance_uuid, exc)
            self._announcing = False

    async def _settle(self) -> bool:
        """Stop or wait out the announcement; True if the start was recorded."""
        task = self._task
        if task is None:
            return False
        if not self._announcing:
            task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # we are being cancelled ourselves
        return self._announcing

    async def _closing(self) -> tuple[str, datetime | None]:
        """The phase and start time that end the event: its finish if the start was shown,
        else the whole event."""
        return ("finish", None) if await self._settle() else ("done", self.started)

    async def end(self, result: str, details: str | None = None) -> list[ActionEvent]:
        """The event to send with the step's final update (none without a request id)."""
        phase, started = await self._closing()
        return self.conductor.event(self.instance_uuid, self.request_id, self.event, phase,
                                    result, details, started=started)

    async def fail(self, details: str) -> None:
        """The step failed: record the event as an error now (on its own)."""
        try:
            phase, started = await self._closing()
            await self.conductor.action_event(self.instance_uuid, self.request_id, self.event,
                                              phase, "Error", details, started)
        except StacklingError as exc:  # the step's own error is what the caller reports
            log.warning("could not record %s of %s as failed: %s", self.event,
                        self.instance_uuid, exc)

    def abandon(self) -> None:
        """The step was cancelled: show no start later."""
        if self._task is not None and not self._announcing:
            self._task.cancel()
