"""Placement claims (parallel claims never overbook), filters and weighers."""

from __future__ import annotations

import asyncio

from stackling.common.ids import new_uuid
from stackling.compute.rpcapi import FlavorInfo, RequestSpec
from stackling.compute.scheduler.filters import FilterContext, HostState, filter_hosts
from stackling.compute.scheduler.weighers import weigh
from stackling.compute.service import placement
from stackling.compute.service.placement import InventorySpec, ProviderUsage
from stackling.db.store import Store

TINY = FlavorInfo(flavorid="1", name="tiny", vcpus=1, memory_mb=512, root_gb=1)


def spec(**kw: object) -> RequestSpec:
    return RequestSpec.model_validate({"instance_uuid": new_uuid(), "project_id": "p",
                                       "user_id": "u", "flavor": TINY, **kw})


def usage(name: str, ram: int = 4096, used_ram: int = 0, vcpus: int = 4) -> ProviderUsage:
    p = ProviderUsage(1, new_uuid(), name, 0)
    p.inventories = {"VCPU": InventorySpec(vcpus), "MEMORY_MB": InventorySpec(ram),
                     "DISK_GB": InventorySpec(100)}
    p.used = {"MEMORY_MB": used_ram}
    return p


def host(name: str, *, zone: str = "nova", up: bool = True, disabled: bool = False,
         ram: int = 4096, used_ram: int = 0) -> HostState:
    return HostState(host=name, node=name, zone=zone, up=up, disabled=disabled,
                     provider=usage(name, ram=ram, used_ram=used_ram))


async def test_parallel_claims_never_overbook(store: Store) -> None:
    await placement.ensure_provider(store, new_uuid(), "h1", {
        "VCPU": InventorySpec(64), "MEMORY_MB": InventorySpec(2048),
        "DISK_GB": InventorySpec(100)})
    async with store.read() as session:
        (p,) = await placement.provider_usages(session)
    results = await asyncio.gather(*(placement.claim(store, p.id, new_uuid(), {
        "VCPU": 1, "MEMORY_MB": 512, "DISK_GB": 1}) for _ in range(10)))
    assert results.count(True) == 4
    async with store.read() as session:
        (p,) = await placement.provider_usages(session)
    assert p.used == {"VCPU": 4, "MEMORY_MB": 2048, "DISK_GB": 4}


async def test_claim_respects_ratio_reserved_and_max_unit(store: Store) -> None:
    await placement.ensure_provider(store, new_uuid(), "h1", {
        "VCPU": InventorySpec(2, allocation_ratio=4.0, max_unit=2),
        "MEMORY_MB": InventorySpec(1024, reserved=512)})
    async with store.read() as session:
        (p,) = await placement.provider_usages(session)
    assert not await placement.claim(store, p.id, "a", {"VCPU": 3})  # > max_unit
    assert await placement.claim(store, p.id, "b", {"VCPU": 2, "MEMORY_MB": 512})
    assert not await placement.claim(store, p.id, "c", {"MEMORY_MB": 1})
    for consumer in "def":
        assert await placement.claim(store, p.id, consumer, {"VCPU": 2})
    assert not await placement.claim(store, p.id, "g", {"VCPU": 1})  # 8 = 2 x 4.0 used
    assert await placement.remove_allocations(store, "b") == 2
    assert await placement.claim(store, p.id, "g", {"VCPU": 1, "MEMORY_MB": 512})


def test_filters() -> None:
    hosts = [host("up"), host("down", up=False), host("off", disabled=True),
             host("full", ram=1024, used_ram=1000), host("az2", zone="az2")]
    assert [h.host for h in filter_hosts(hosts, spec(), FilterContext())] == ["up", "az2"]
    assert [h.host for h in filter_hosts(hosts, spec(availability_zone="az2"),
                                         FilterContext())] == ["az2"]
    assert [h.host for h in filter_hosts(hosts, spec(ignore_hosts=["up"]),
                                         FilterContext())] == ["az2"]
    assert [h.host for h in filter_hosts(hosts, spec(requested_host="az2"),
                                         FilterContext())] == ["az2"]
    anti = spec(group_policy="anti-affinity")
    assert [h.host for h in filter_hosts(hosts, anti, FilterContext(
        group_hosts={"up": 1}))] == ["az2"]
    affinity = spec(group_policy="affinity")
    assert [h.host for h in filter_hosts(hosts, affinity, FilterContext(
        group_hosts={"az2": 1}))] == ["az2"]
    assert [h.host for h in filter_hosts(hosts, spec(), FilterContext(
        different_host={"up"}))] == ["az2"]


def test_weighers_spread_and_pack() -> None:
    hosts = [host("busy", used_ram=3000), host("idle"), host("half", used_ram=2000)]
    assert [h.host for h in weigh(hosts, spec(), FilterContext(), "spread")] == [
        "idle", "half", "busy"]
    assert [h.host for h in weigh(hosts, spec(), FilterContext(), "pack")] == [
        "busy", "half", "idle"]
    soft = spec(group_policy="soft-affinity")
    assert weigh(hosts, soft, FilterContext(group_hosts={"busy": 2}), "spread")[0].host == \
        "busy"


def test_inventory_admits_units_steps_and_capacity() -> None:
    inv = InventorySpec(8, reserved=2, min_unit=2, max_unit=4, step_size=2, allocation_ratio=2.0)
    assert inv.capacity == 12 and inv.largest == 4
    assert inv.admits(2, 0) and inv.admits(4, 8)
    assert not inv.admits(1, 0)   # below min_unit
    assert not inv.admits(3, 0)   # not a multiple of step_size
    assert not inv.admits(6, 0)   # above max_unit
    assert not inv.admits(4, 10)  # 14 > capacity 12
    assert InventorySpec(5).largest == 5  # no max_unit: the total
    assert InventorySpec(5) == InventorySpec(5, 0, 1, None, 1, 1.0)


def test_remembered_answers_follow_the_providers_changes() -> None:
    """A provider keeps its fit and free answers between requests, and forgets them when a
    claim adds to it or its usage is replaced in place (``changed``)."""
    h = host("h1", ram=1024)
    request, ctx = spec(), FilterContext()
    assert filter_hosts([h], request, ctx) == [h] and h.provider.free("MEMORY_MB") == 1024
    h.provider.add({"MEMORY_MB": 512})
    assert filter_hosts([h], request, ctx) == [h] and h.provider.free("MEMORY_MB") == 512
    h.provider.add({"MEMORY_MB": 512})
    assert filter_hosts([h], request, ctx) == [] and h.provider.free("MEMORY_MB") == 0
    h.provider.used = {"MEMORY_MB": 0}  # as a locked claim refreshes its snapshot
    h.provider.changed()
    assert filter_hosts([h], request, ctx) == [h] and h.provider.free("MEMORY_MB") == 1024
    bigger = spec(flavor=FlavorInfo(flavorid="2", name="big", vcpus=1, memory_mb=2048))
    assert filter_hosts([h], bigger, ctx) == []  # another shape, its own answer


def test_the_fast_paths_agree_with_the_general_ones() -> None:
    """filter_hosts' one-pass path (no filter beside the service and the resources) and the
    weighers' bulk scores give what the per-host filters and weighers give."""
    import random

    from stackling.compute.scheduler import filters, weighers

    rnd = random.Random(3)
    hosts = []
    for i in range(300):
        h = host(f"h{i}", up=rnd.random() > 0.1, disabled=rnd.random() < 0.1,
                 ram=rnd.choice([1024, 4096]), used_ram=rnd.randint(0, 4096))
        h.provider.inventories["VCPU"] = InventorySpec(
            8, reserved=rnd.randint(0, 2), step_size=rnd.choice([1, 2]),
            allocation_ratio=rnd.choice([1.0, 4.0]))
        h.provider.used["VCPU"] = rnd.randint(0, 20)
        if i % 37 == 0:
            del h.provider.inventories["MEMORY_MB"]
        hosts.append(h)
    request, ctx = spec(), FilterContext()
    general = [h for h in hosts
               if all(f(h, request, ctx) for f in filters.filters_for(request, ctx))]
    assert 0 < len(general) < len(hosts)
    assert filter_hosts(hosts, request, ctx) == general
    assert filter_hosts(hosts, request, ctx, limit=5) == general[:5]
    for weigher, bulk in weighers._BULK.items():
        assert bulk(hosts) == [weigher(h, request, ctx) for h in hosts]


def test_the_lazy_ranking_gives_weighs_order() -> None:
    """ranking.best_first yields the hosts filter_hosts + weigh give, in the same order
    (ties included), for spread and pack, with and without a limit, with only the service
    and resource filters and with more filters or a soft group policy."""
    import random

    from stackling.compute.scheduler import ranking

    rnd = random.Random(5)
    hosts = []
    for i in range(400):
        h = host(f"h{i}", up=rnd.random() > 0.1, disabled=rnd.random() < 0.1,
                 ram=rnd.choice([1024, 4096]), used_ram=rnd.choice([0, 512, 1024, 2048]))
        h.provider.inventories["VCPU"] = InventorySpec(
            8, reserved=rnd.randint(0, 2), step_size=rnd.choice([1, 2]),
            allocation_ratio=rnd.choice([1.0, 4.0]))
        h.provider.used["VCPU"] = rnd.choice([0, 4, 8])
        if i % 37 == 0:
            del h.provider.inventories["MEMORY_MB"]
        hosts.append(h)
    for request in (spec(), spec(group_policy="soft-anti-affinity"),
                    spec(availability_zone="nova"), spec(ignore_hosts=["h3", "h5"])):
        ctx = FilterContext(group_hosts={"h7": 2, "h9": 1})
        for mode in ("spread", "pack"):
            for limit in (None, 50):
                expected = weigh(filter_hosts(hosts, request, ctx, limit), request, ctx, mode)
                got = list(ranking.best_first(hosts, request, ctx, mode, limit))
                assert [h.host for h in got] == [h.host for h in expected], (request, mode)
                assert len(expected) > 10
    solo, full = host("solo"), host("full", used_ram=4096)
    assert list(ranking.best_first([full, solo], spec(), FilterContext(), "spread")) == [solo]
    assert list(ranking.best_first([full], spec(), FilterContext(), "spread")) == []


def test_a_kept_standing_ranks_as_a_fresh_weighing_while_hosts_change() -> None:
    """best_first keeps what it learned of one host list between requests and re-reads
    only changed providers: over a run of claims, hosts going down or disabled and
    inventories replaced in place, its order stays weigh's, ties included (spread and
    pack, with a limit that cuts the passing hosts or not)."""
    import random

    from stackling.compute.scheduler import ranking

    rnd = random.Random(11)
    hosts = []
    for i in range(120):
        h = host(f"h{i}", up=rnd.random() > 0.1, ram=rnd.choice([1024, 2048, 4096]),
                 used_ram=rnd.choice([0, 512, 1024]))
        h.provider.used["VCPU"] = rnd.choice([0, 1, 2])
        hosts.append(h)
    small, big = spec(), spec(flavor=FlavorInfo(flavorid="2", name="b", vcpus=2,
                                                memory_mb=1024, root_gb=1))
    ctx = FilterContext()
    for step in range(300):
        request = small if step % 3 else big
        mode = "pack" if step % 5 == 0 else "spread"
        limit = 40 if step % 7 == 0 else None
        expected = weigh(filter_hosts(hosts, request, ctx, limit), request, ctx, mode)
        got = list(ranking.best_first(hosts, request, ctx, mode, limit))
        assert [h.host for h in got] == [h.host for h in expected], step
        first = next(ranking.best_first(hosts, request, ctx, mode, limit), None)
        assert first is (expected[0] if expected else None)
        # what happens between two requests: a claim, a host found down, a freed host
        if expected:
            expected[0].provider.add(request.flavor.resources())
        h = rnd.choice(hosts)
        h.up, h.disabled = rnd.random() > 0.2, rnd.random() < 0.1
        h.provider.changed()
        if step % 11 == 0:
            h = rnd.choice(hosts)
            h.provider.used = {"MEMORY_MB": 0}
            h.provider.changed()
    everything_full = [host("x", used_ram=4096), host("y", used_ram=4096)]
    assert list(ranking.best_first(everything_full, small, ctx, "spread")) == []

