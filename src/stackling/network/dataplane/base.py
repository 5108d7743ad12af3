"""The data plane interface: what turns a host's desired network state into kernel objects.

A data plane is declarative. The agent hands it the whole :class:`HostState` of its host and
the data plane makes the kernel match:

``apply(state)``
    Idempotent reconcile. Creates what is missing, fixes what differs and deletes what is
    *ours* (carries our naming prefixes) and is no longer wanted. Calling it twice with the
    same state changes nothing the second time; calling it after a restart adopts what the
    previous run left (that IS the restart reconcile). It does not stop at the first error:
    every object is tried, the failures of compute ports are reported per port in
    :attr:`ApplyReport.failed` (a readable reason, never a secret), and the failures of other
    objects (a router, a DHCP server) in :attr:`ApplyReport.errors`. A port whose tap does not
    exist yet (the hypervisor creates it) is :attr:`ApplyReport.pending`, not failed.
``refresh()``
    Cheap re-check of pending ports only (taps that appeared since): plugs them and returns
    a fresh report. The agent polls it while something is pending.
``teardown()``
    Removes everything ours (bridges, VXLAN devices, namespaces, dnsmasq processes, nft
    tables, listeners) except the VM taps, which belong to the hypervisor. Errors are logged
    and the rest is still removed.
``close()``
    Releases in-process resources (listeners, tasks) but leaves the kernel as it is, so a
    restarted agent adopts it.

Only the host's own objects are touched: a data plane never changes interfaces, routes or
firewall tables it did not create.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

from stackling.network.rpcapi import HostState

#: device owners of ports a VM plugs (``compute:nova``, ``compute:<az>``)
COMPUTE_OWNER_PREFIX = "compute:"


def is_compute_port(device_owner: str) -> bool:
    return device_owner.startswith(COMPUTE_OWNER_PREFIX)


@dataclass
class ApplyReport:
    """The outcome of one :meth:`Dataplane.apply` / :meth:`Dataplane.refresh`.

    ``wired``: compute ports of this host that are plugged with their rules applied.
    ``pending``: compute ports whose tap does not exist yet. ``failed``: port id -> reason.
    ``errors``: problems with non-port objects (router, DHCP, ...), readable sentences."""

    revision: int = 0
    wired: set[str] = field(default_factory=set)
    pending: set[str] = field(default_factory=set)
    failed: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


class Dataplane(ABC):
    """See the module docstring for the contract."""

    name: str = ""

    @abstractmethod
    async def apply(self, state: HostState) -> ApplyReport:
        """Make the kernel match ``state`` (idempotent; see the module docstring)."""

    async def refresh(self) -> ApplyReport:
        """Plug ports that were pending; the default re-applies the last state."""
        state = self.last_state
        return await self.apply(state) if state is not None else ApplyReport()

    @abstractmethod
    async def teardown(self) -> None:
        """Remove every object this data plane owns (not the VM taps)."""

    async def close(self) -> None:  # noqa: B027 (optional hook, nothing to release here)
        """Release in-process resources; the kernel objects stay for the next run."""

    @property
    @abstractmethod
    def last_state(self) -> HostState | None:
        """The state of the last :meth:`apply` (``None`` before the first)."""
