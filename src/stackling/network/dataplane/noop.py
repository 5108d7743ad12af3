"""The no-op data plane: records the desired state and reports every compute port of this
host wired. For fast tests and simulation (``stackling up --dataplane noop``, ``sim``)."""

from __future__ import annotations

from stackling.network.dataplane.base import ApplyReport, Dataplane, is_compute_port
from stackling.network.rpcapi import HostState


class NoopDataplane(Dataplane):
    name = "noop"

    def __init__(self) -> None:
        self._state: HostState | None = None
        self.applied = 0  # how many times apply() ran (tests look)

    async def apply(self, state: HostState) -> ApplyReport:
        self._state = state
        self.applied += 1
        wired = {p.id for p in state.ports
                 if is_compute_port(p.device_owner) and p.host == state.host
                 and p.admin_state_up}
        return ApplyReport(revision=state.revision, wired=wired)

    async def teardown(self) -> None:
        self._state = None

    @property
    def last_state(self) -> HostState | None:
        return self._state
