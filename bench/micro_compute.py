"""Micro-benchmarks of the compute control plane's hot paths, for A/B comparisons of commits.

The whole-run figure of ``bench/run compute`` (b) moves by 10-20 % between runs of the same
commit on this shared box, which hides changes of a few per cent. These time single code
paths in-process, CPU time (``time.process_time``), on synthetic data:

- ``select_1000_hosts_ms``: the scheduler's filter + weigh over 1,000 hosts, up to the best
  host (what one request pays when its first claim wins);
- ``actions_cycle_ms``: record an action, start and finish an event, record a whole event
  (what a boot does to ``os-instance-actions``), on SQLite;
- ``load_records_16_ms``: what 16 server views need beside the instance rows, on SQLite.

Usage: ``bench/run micro-compute [--rev REV ...]`` (default: HEAD; a revision's ``src/`` is
exported as for the other benches; ``worktree`` = the installed package). Each revision runs
in its own process; results go to ``bench/results/micro-compute-<time>.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

from benchlib import BENCH_DIR
from identity import stackling_command

PROBE = r'''
import asyncio, json, random, sys, tempfile, time, types
from stackling.common.context import RequestContext
from stackling.compute.models import Base, Instance, InstanceMetadata
from stackling.compute.scheduler import manager
from stackling.compute.scheduler.filters import FilterContext, HostState
from stackling.compute.service import instance_actions as ia
from stackling.compute.service.instances import load_records
from stackling.compute.service.placement import InventorySpec, ProviderUsage
from stackling.db.engine import create_engine, session_factory
from stackling.db.store import Store
from sqlalchemy import select

def select_ms():
    rnd = random.Random(7)
    hosts = []
    for i in range(1000):
        inv = {"VCPU": InventorySpec(8, 0, 1, 8, 1, 16.0),
               "MEMORY_MB": InventorySpec(16384, 512, 1, 16384, 1, 1.5),
               "DISK_GB": InventorySpec(100, 0, 1, 100, 1, 1.0)}
        used = {"VCPU": rnd.randint(0, 20), "MEMORY_MB": rnd.randint(0, 8000),
                "DISK_GB": rnd.randint(0, 50)}
        hosts.append(HostState(f"h{i}", f"h{i}", "nova", True, False,
                               ProviderUsage(i, f"u{i}", f"h{i}", 0, inv, used)))
    flavor = types.SimpleNamespace(resources=lambda: {"VCPU": 1, "MEMORY_MB": 512,
                                                      "DISK_GB": 1})
    spec = types.SimpleNamespace(ignore_hosts=[], requested_host=None, requested_node=None,
                                 availability_zone=None, group_policy=None, flavor=flavor,
                                 scheduler_hints={})
    sched = types.SimpleNamespace(
        cache=types.SimpleNamespace(candidates=lambda host, limit: hosts),
        svc=types.SimpleNamespace(conf=types.SimpleNamespace(weigher="spread")))
    n = 200
    t0 = time.process_time()
    for _ in range(n):
        next(iter(manager.Scheduler.select(sched, spec, FilterContext())))
    return (time.process_time() - t0) / n * 1000

async def store_of():
    engine = create_engine(f"sqlite:///{tempfile.mkdtemp()}/compute.sqlite")
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    return Store(session_factory(engine))

async def actions_ms():
    store = await store_of()
    ctx = RequestContext(request_id="req-1", user_id="u", project_id="p")
    n = 400
    t0 = time.process_time()
    for i in range(n):
        uuid = f"uuid-{i}"
        async with store.write() as s:
            await ia.record(s, ctx, uuid, "create")
        await ia.event(store, uuid, "req-1", "schedule", "start")
        await ia.event(store, uuid, "req-1", "schedule", "finish", result="Success")
        async with store.write() as s:
            await ia.event_in(s, uuid, "req-1", "build", "done", result="Success")
    return (time.process_time() - t0) / n * 1000

async def load_records_ms():
    store = await store_of()
    async with store.write() as s:
        for i in range(16):
            s.add(Instance(uuid=f"u{i:04d}", project_id="p", user_id="u", display_name=f"s{i}",
                           reservation_id="r", flavor={}, vm_state="active", power_state=1))
            s.add(InstanceMetadata(instance_uuid=f"u{i:04d}", key="k", value="v"))
    n = 300
    async with store.read() as s:
        rows = list((await s.execute(select(Instance))).scalars())
        await load_records(s, rows)
        t0 = time.process_time()
        for _ in range(n):
            await load_records(s, rows)
    return (time.process_time() - t0) / n * 1000

async def main():
    out = {"select_1000_hosts_ms": select_ms(), "actions_cycle_ms": await actions_ms(),
           "load_records_16_ms": await load_records_ms()}
    print(json.dumps({k: round(v, 2) for k, v in out.items()}))

asyncio.run(main())
'''


def run(rev: str) -> dict[str, object]:
    found = stackling_command(rev)
    if found is None:
        raise SystemExit(f"no stackling source for {rev!r}")
    _, env, commit = found
    r = subprocess.run([sys.executable, "-c", PROBE], env={**os.environ, **env},
                       capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise SystemExit(f"{rev}: the probe failed:\n{r.stderr[-2000:]}")
    figures: dict[str, object] = json.loads(r.stdout.strip().splitlines()[-1])
    return {"rev": rev, "commit": commit, **figures}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rev", action="append", help="git revision, 'worktree' or a source tree")
    args = ap.parse_args()
    results = [run(rev) for rev in (args.rev or ["HEAD"])]
    for res in results:
        print(f"{res['commit']}: select over 1000 hosts {res['select_1000_hosts_ms']} ms, "
              f"actions record+start+finish+done {res['actions_cycle_ms']} ms, "
              f"load_records(16) {res['load_records_16_ms']} ms (CPU)")
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = BENCH_DIR / "results" / f"micro-compute-{stamp}.json"
    path.write_text(json.dumps({"date": stamp, "results": results}, indent=1) + "\n")
    print(f"results: {path.relative_to(Path(BENCH_DIR).parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
