"""The volume scheduler's filters and weigher."""

from __future__ import annotations

from stackling.volume.scheduler import Pool, Request, select_pool


def pool(name: str, free: float = 100, total: float = 100, provisioned: float = 0,
         thin: bool = True, **caps: object) -> Pool:
    return Pool(name=name, zone="nova", total_gb=total, free_gb=free,
                provisioned_gb=provisioned, thin=thin, max_over_subscription_ratio=2.0,
                capabilities={"volume_backend_name": name.split("#")[-1], **caps})


def test_capacity_thin_and_thick() -> None:
    thin = pool("a@x#x", free=10, total=100, provisioned=150)
    assert select_pool([thin], Request(size_gb=40)) is thin  # 190 <= 200
    assert select_pool([thin], Request(size_gb=60)) is None  # 210 > 200
    thick = pool("b@y#y", free=10, thin=False)
    assert select_pool([thick], Request(size_gb=10)) is thick
    assert select_pool([thick], Request(size_gb=11)) is None


def test_extra_specs_and_operators() -> None:
    a = pool("a@fast#fast", storage_protocol="nbd", multiattach=True)
    b = pool("b@slow#slow", storage_protocol="file")
    assert select_pool([a, b], Request(1, extra_specs={"volume_backend_name": "slow"})) is b
    assert select_pool([a, b], Request(1, extra_specs={
        "capabilities:storage_protocol": "<in> nb"})) is a
    assert select_pool([a, b], Request(1, extra_specs={"multiattach": "<is> True"})) is a
    assert select_pool([a, b], Request(1, extra_specs={"capabilities:nope": "1"})) is None
    # unknown unscoped keys and other scopes do not filter
    assert select_pool([b], Request(1, extra_specs={"hw:cpu": "2", "foo": "bar"})) is b


def test_zone_source_host_and_weigher() -> None:
    a = pool("a@x#x", provisioned=10)
    b = pool("b@x#x", provisioned=50)
    assert select_pool([a, b], Request(1)) is a  # most virtual free space
    assert select_pool([a, b], Request(1, only="b@x#x")) is b
    assert select_pool([a, b], Request(1, availability_zone="other")) is None
