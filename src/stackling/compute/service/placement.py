"""Placement: resource providers (one per hypervisor), their inventories and allocations.

The claim is the scheduler's serialization point (flow step 5). :func:`claim` first bumps the
provider's ``generation`` -- a write, so it takes the row lock on PostgreSQL/MariaDB and the
database write lock on SQLite -- and only then reads the usage and inserts the allocations.
Two claims on one provider therefore run one after the other and the second sees the first's
allocations: a host is never overbooked, however many schedulers run.

Placement's generation protocol makes the common case cheaper: every change of a provider's
inventory or allocations bumps its ``generation`` in the same transaction, so a caller holding
a snapshot (:class:`ProviderUsage`, read generation first, then inventory and usage) whose
generation still matches knows the snapshot is exact. :func:`claim` with ``known=`` then
swaps the generation (``UPDATE ... WHERE generation = :seen``) and inserts, without reading;
a lost swap falls back to the locked read above.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from stackling.common.timeutils import utcnow
from stackling.compute.models import Allocation, Inventory, ResourceProvider
from stackling.db.base import table_of
from stackling.db.store import Store

RESOURCE_CLASSES = ("VCPU", "MEMORY_MB", "DISK_GB")
#: long loops over rows give the event loop back this often
YIELD_EVERY = 2000


@dataclass(frozen=True)
class InventorySpec:
    total: int
    reserved: int = 0
    min_unit: int = 1
    max_unit: int | None = None  # default: total
    step_size: int = 1
    allocation_ratio: float = 1.0
    #: what can be allocated in all: (total - reserved) * allocation_ratio
    capacity: int = field(init=False, repr=False, compare=False)
    #: the most one allocation may take: max_unit, or total when it is not set
    largest: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # worked out once: the scheduler asks every host's inventory on every request
        object.__setattr__(self, "capacity",
                           int((self.total - self.reserved) * self.allocation_ratio))
        object.__setattr__(self, "largest",
                           self.max_unit if self.max_unit is not None else self.total)

    def admits(self, amount: int, used: int) -> bool:
        """Whether one more allocation of ``amount`` (> 0) fits beside ``used``."""
        return (self.min_unit <= amount <= self.largest and not amount % self.step_size
                and used + amount <= self.capacity)


@dataclass
class ProviderUsage:
    """A provider with its inventory and what is allocated on it.

    A scheduler asks every provider the same questions on every request (does this flavor
    fit, how much is free) while only the provider it claims on changes, so the answers
    are kept until :meth:`add` or :meth:`changed`. Whoever changes ``inventories`` or
    ``used`` in place after the provider has been asked calls :meth:`changed`."""

    id: int
    uuid: str
    name: str
    generation: int
    inventories: dict[str, InventorySpec] = field(default_factory=dict)
    used: dict[str, int] = field(default_factory=dict)
    _free: dict[str, int] = field(default_factory=dict, init=False, repr=False,
                                  compare=False)
    _fits: dict[object, bool] = field(default_factory=dict, init=False, repr=False,
                                      compare=False)
    #: bumped by every :meth:`changed`: a scheduler's ranking re-reads only the providers
    #: whose version moved
    version: int = field(default=0, init=False, repr=False, compare=False)

    def free(self, resource_class: str) -> int:
        known = self._free.get(resource_class)
        if known is not None:
            return known
        inv = self.inventories.get(resource_class)
        free = 0 if inv is None else inv.capacity - self.used.get(resource_class, 0)
        self._free[resource_class] = free
        return free

    def fits(self, resources: Mapping[str, int]) -> bool:
        return self._admits((rc, amount) for rc, amount in resources.items() if amount > 0)

    def fits_wanted(self, key: object, wanted: tuple[tuple[str, int], ...]) -> bool:
        """:meth:`fits` for the positive amounts ``wanted``, remembered under ``key`` (one
        per request shape) until the provider changes."""
        known = self._fits.get(key)
        if known is None:
            known = self._fits[key] = self._admits(wanted)
        return known

    def _admits(self, wanted: Iterable[tuple[str, int]]) -> bool:
        inventories, used = self.inventories, self.used
        for rc, amount in wanted:
            inv = inventories.get(rc)
            if inv is None or not inv.admits(amount, used.get(rc, 0)):
                return False
        return True

    def add(self, resources: Mapping[str, int]) -> None:
        for rc, amount in resources.items():
            self.used[rc] = self.used.get(rc, 0) + amount
        self.changed()

    def changed(self) -> None:
        """Forget the remembered answers (``inventories`` or ``used`` changed in place)."""
        self._free.clear()
        self._fits.clear()
        self.version += 1


async def ensure_provider(store: Store, uuid: str, name: str,
                          inventories: Mapping[str, InventorySpec]) -> None:
    """Create the provider if needed and set its inventory (replacing the previous one)."""
    async with store.write() as session:
        rp = (await session.execute(select(ResourceProvider).where(
            ResourceProvider.uuid == uuid))).scalar_one_or_none()
        if rp is None:
            rp = ResourceProvider(uuid=uuid, name=name, generation=0)
            session.add(rp)
            await session.flush()
        current = {inv.resource_class: inv for inv in (await session.execute(
            select(Inventory).where(Inventory.resource_provider_id == rp.id))).scalars()}
        changed = False
        for rc, spec in inventories.items():
            inv = current.pop(rc, None)
            values = {"total": spec.total, "reserved": spec.reserved,
                      "min_unit": spec.min_unit,
                      "max_unit": spec.max_unit if spec.max_unit is not None else spec.total,
                      "step_size": spec.step_size, "allocation_ratio": spec.allocation_ratio}
            if inv is None:
                session.add(Inventory(resource_provider_id=rp.id, resource_class=rc, **values))
                changed = True
            elif any(getattr(inv, k) != v for k, v in values.items()):
                for k, v in values.items():
                    setattr(inv, k, v)
                changed = True
        for inv in current.values():
            await session.delete(inv)
            changed = True
        if changed:
            rp.generation += 1
            rp.updated_at = utcnow()


async def provider_usages(session: AsyncSession,
                          names: list[str] | None = None) -> list[ProviderUsage]:
    """Every provider (or those named) with inventory and usage: three queries in all, of
    plain rows (no ORM objects: a scheduler may read ten thousand providers). Generations
    are read first, so a change committed meanwhile leaves a snapshot that is older than
    its generation says only in the safe direction (its claim falls back to the lock)."""
    query = select(ResourceProvider.id, ResourceProvider.uuid, ResourceProvider.name,
                   ResourceProvider.generation)
    if names is not None:
        query = query.where(ResourceProvider.name.in_(names))
    providers = {rp_id: ProviderUsage(rp_id, uuid, name, generation)
                 for rp_id, uuid, name, generation in (await session.execute(query)).all()}
    if not providers:
        return []
    inv_query = select(Inventory.resource_provider_id, Inventory.resource_class,
                       Inventory.total, Inventory.reserved, Inventory.min_unit,
                       Inventory.max_unit, Inventory.step_size, Inventory.allocation_ratio)
    use_query = (select(Allocation.resource_provider_id, Allocation.resource_class,
                        func.sum(Allocation.used))
                 .group_by(Allocation.resource_provider_id, Allocation.resource_class))
    if names is not None:
        ids = list(providers)
        inv_query = inv_query.where(Inventory.resource_provider_id.in_(ids))
        use_query = use_query.where(Allocation.resource_provider_id.in_(ids))
    rows = (await session.execute(inv_query)).all()
    for i, (rp_id, rc, total, reserved, min_unit, max_unit, step, ratio) in enumerate(rows):
        if i and not i % YIELD_EVERY:
            await asyncio.sleep(0)  # tens of thousands of rows: let other requests run
        usage = providers.get(rp_id)
        if usage is not None:
            usage.inventories[rc] = InventorySpec(total, reserved, min_unit, max_unit, step,
                                                  ratio)
    for rp_id, rc, used in (await session.execute(use_query)).all():
        usage = providers.get(rp_id)
        if usage is not None:
            usage.used[rc] = int(used or 0)
    return list(providers.values())


class _DoesNotFit(Exception):
    pass


async def claim(store: Store, provider_id: int, consumer_id: str,
                resources: Mapping[str, int], *, project_id: str | None = None,
                user_id: str | None = None, known: ProviderUsage | None = None) -> bool:
    """Atomically allocate ``resources`` on the provider to ``consumer_id`` (replacing what
    the consumer held there). False when they no longer fit (someone claimed first).
    ``known``: see :func:`claim_in`."""
    try:
        async with store.write() as session:
            if not await claim_in(session, provider_id, consumer_id, resources,
                                  project_id=project_id, user_id=user_id, known=known):
                raise _DoesNotFit  # roll back the generation bump
    except _DoesNotFit:
        return False
    return True


# the statements of every claim and release, built once (Core, on the tables: nothing to
# construct, compile or synchronize per call)
_RP: Final = table_of(ResourceProvider)
_AL: Final = table_of(Allocation)
_SWAP_GENERATION: Final = update(_RP).where(
    _RP.c.id == bindparam("pid"), _RP.c.generation == bindparam("gen")).values(
    generation=_RP.c.generation + 1, updated_at=bindparam("t"))
_BUMP_GENERATION: Final = update(_RP).where(_RP.c.id == bindparam("pid")).values(
    generation=_RP.c.generation + 1, updated_at=bindparam("t"))
_BUMP_CONSUMERS_PROVIDERS: Final = update(_RP).where(_RP.c.id.in_(
    select(_AL.c.resource_provider_id).where(_AL.c.consumer_id == bindparam("cid"))
    .scalar_subquery())).values(generation=_RP.c.generation + 1)
_DROP_HERE: Final = delete(_AL).where(_AL.c.consumer_id == bindparam("cid"),
                                      _AL.c.resource_provider_id == bindparam("pid"))
_DROP_CONSUMER: Final = delete(_AL).where(_AL.c.consumer_id == bindparam("cid"))
_ADD_ALLOCATIONS: Final = insert(_AL)


async def claim_in(session: AsyncSession, provider_id: int, consumer_id: str,
                   resources: Mapping[str, int], *, project_id: str | None = None,
                   user_id: str | None = None, known: ProviderUsage | None = None) -> bool:
    """:func:`claim` inside the caller's transaction (which must roll back on False).

    ``known``: the caller's snapshot of the provider. While its generation is current, the
    check runs on it and no usage is read; otherwise usage is read under the lock. Either
    way ``known`` is left as the provider is (with this claim added when it succeeded)."""
    here = {"pid": provider_id, "cid": consumer_id}
    if known is not None and known.fits(resources):
        swapped = await session.execute(_SWAP_GENERATION, {
            "pid": provider_id, "gen": known.generation, "t": utcnow()})
        if swapped.rowcount == 1:  # type: ignore[attr-defined]
            # the snapshot is exact; what the consumer already held here is replaced,
            # which can only make room
            await session.execute(_DROP_HERE, here)
            await _insert(session, provider_id, consumer_id, resources, project_id, user_id)
            known.generation += 1
            known.add(resources)
            return True
    # lock first (see the module docstring), then count
    bumped = await session.execute(_BUMP_GENERATION, {"pid": provider_id, "t": utcnow()})
    if bumped.rowcount == 0:  # type: ignore[attr-defined]
        return False
    await session.execute(_DROP_HERE, here)
    usage = ProviderUsage(provider_id, "", "", 0)
    usage.generation = int((await session.execute(select(ResourceProvider.generation).where(
        ResourceProvider.id == provider_id))).scalar_one())
    for inv in (await session.execute(select(Inventory).where(
            Inventory.resource_provider_id == provider_id))).scalars():
        usage.inventories[inv.resource_class] = InventorySpec(
            inv.total, inv.reserved, inv.min_unit, inv.max_unit, inv.step_size,
            inv.allocation_ratio)
    for rc, used in (await session.execute(
            select(Allocation.resource_class, func.sum(Allocation.used))
            .where(Allocation.resource_provider_id == provider_id)
            .group_by(Allocation.resource_class))).all():
        usage.used[rc] = int(used or 0)
    fits = usage.fits(resources)
    if known is not None:
        # the caller's transaction rolls back on False: the generation read here is the
        # bumped one, one more than what stays committed; a stale generation only costs
        # the next claim this locked path
        known.generation = usage.generation
        known.inventories, known.used = usage.inventories, dict(usage.used)
        known.changed()
    if not fits:
        return False
    await _insert(session, provider_id, consumer_id, resources, project_id, user_id)
    if known is not None:
        known.add(resources)
    return True


async def _insert(session: AsyncSession, provider_id: int, consumer_id: str,
                  resources: Mapping[str, int], project_id: str | None,
                  user_id: str | None) -> None:
    rows = [{"resource_provider_id": provider_id, "consumer_id": consumer_id,
             "resource_class": rc, "used": amount, "project_id": project_id,
             "user_id": user_id} for rc, amount in resources.items() if amount > 0]
    if rows:
        await session.execute(_ADD_ALLOCATIONS, rows)


async def _bump_consumers_providers(session: AsyncSession, consumer_id: str) -> None:
    """A change of ``consumer_id``'s allocations changes its providers' generations."""
    await session.execute(_BUMP_CONSUMERS_PROVIDERS, {"cid": consumer_id})


async def remove_allocations(store: Store, consumer_id: str) -> int:
    """Free everything ``consumer_id`` holds. Returns how many allocation rows went."""
    async with store.write() as session:
        return await remove_allocations_in(session, consumer_id)


async def remove_allocations_in(session: AsyncSession, consumer_id: str) -> int:
    """:func:`remove_allocations` inside the caller's transaction."""
    await _bump_consumers_providers(session, consumer_id)
    result = await session.execute(_DROP_CONSUMER, {"cid": consumer_id})
    return int(result.rowcount)  # type: ignore[attr-defined]


async def allocations_of(session: AsyncSession, consumer_id: str) -> dict[str, dict[str, int]]:
    """``{provider name: {resource class: used}}`` for one consumer."""
    rows = (await session.execute(
        select(ResourceProvider.name, Allocation.resource_class, Allocation.used)
        .join(ResourceProvider, ResourceProvider.id == Allocation.resource_provider_id)
        .where(Allocation.consumer_id == consumer_id))).all()
    out: dict[str, dict[str, int]] = defaultdict(dict)
    for name, rc, used in rows:
        out[name][rc] = out[name].get(rc, 0) + int(used)
    return dict(out)


async def consumers_on(session: AsyncSession, provider_name: str) -> set[str]:
    rows = (await session.execute(
        select(Allocation.consumer_id).join(
            ResourceProvider, ResourceProvider.id == Allocation.resource_provider_id)
        .where(ResourceProvider.name == provider_name).distinct())).scalars()
    return set(rows)


async def move_allocations(store: Store, source: str, target: str) -> int:
    """Hand ``source``'s allocations to ``target`` (a resize parks the instance's old
    allocation on its migration while the new flavor is claimed for the instance)."""
    async with store.write() as session:
        await _bump_consumers_providers(session, source)
        result = await session.execute(
            update(Allocation).where(Allocation.consumer_id == source)
            .values(consumer_id=target).execution_options(synchronize_session=False))
        return int(result.rowcount)  # type: ignore[attr-defined]
