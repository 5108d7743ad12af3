#!/usr/bin/env python3
"""Compute control plane: boot latency, boot+delete throughput and scheduling time with the
fake hypervisor, against ``stackling sim --hosts N`` (N simulated compute hosts in one process).

    bench/run compute                       # = python3 bench/compute.py; ~3-4 min
    bench/run compute --boots 50 --cycles 200 --sched-boots 50     # quicker, noisier

One run measures, each against a fresh ``stackling sim`` (the committed HEAD by default):

a. API -> ACTIVE latency: ``--boots`` servers (m1.tiny, a raw image, ``networks: none``)
   booted one after another with ``--latency-hosts`` hosts; per boot, the time from sending
   ``POST /servers`` to the ACTIVE transition, i.e. the server's ``OS-SRV-USG:launched_at``
   (written in the transaction that sets ACTIVE; server and client share this machine's
   clock), and, as the client sees it, until ``GET /servers/{id}`` first shows ACTIVE
   (polled every ``--poll-ms``: that adds up to one interval and the GETs' own load).
   Each server is deleted (and waited for) before the next boot.
b. boot+delete throughput: ``--concurrency`` workers, each looping POST, wait ACTIVE,
   DELETE, wait gone, with ``--throughput-hosts`` hosts, until ``--cycles`` cycles are done.
   The workers share one poller (``GET /servers/detail?changes-since=...`` every
   ``--poll-ms``, the way a dashboard watches many servers) instead of one GET per server.
   Anchor: OpenStack's published Rally ``boot-and-delete`` figure, 5.4 per second on a
   ~32-core control plane (see bench/README.md).
c. scheduling time per request: ``--sched-boots`` sequential boots with ``--sched-hosts``
   hosts; the scheduler's own histogram (``stackling_compute_schedule_seconds`` on
   ``/metrics``: load host state, filter, weigh, claim in the DB, bind) gives the mean and
   the p50/p99 bucket bounds.

Also recorded: server CPU seconds per boot (the whole ``stackling sim`` process), the
CPU other processes used (the machine is shared), and the sim's start-up time.
Results go to bench/results/compute-*.json and between <!-- compute:begin --> and
<!-- compute:end --> in bench/README.md. Floors: (a) p50 <= 50 ms, (b) >= 50 per second,
(c) <= 20 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import httpx
from benchlib import BENCH_DIR, CpuWindow, ProcTree, python_speed_ms, wait_http
from identity import Failure, host_info, stackling_command

README = BENCH_DIR / "README.md"
RESULTS = BENCH_DIR / "results"
BEGIN, END = "<!-- compute:begin -->", "<!-- compute:end -->"
FLOOR_P50_MS = 50.0
FLOOR_RATE = 50.0
FLOOR_SCHED_MS = 20.0
ANCHOR_RATE = 5.4
COMPUTE = "/compute/v2.1"
SCHED_METRIC = "stackling_compute_schedule_seconds"
# how far before its oldest waiter's registration the shared poll looks: client and server
# read one clock, so only that clock's resolution needs covering
SLACK = dt.timedelta(milliseconds=100)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


class Sim:
    """A ``stackling sim --hosts N`` in a fresh data dir, and an admin token for it."""

    def __init__(self, args: argparse.Namespace, hosts: int) -> None:
        found = stackling_command(args.stackling_rev)
        if found is None:
            raise Failure("no `stackling` command")
        cmd, cmd_env, self.commit = found
        self.commit = getattr(args, "commit_label", None) or self.commit
        self.hosts = hosts
        self.data = Path(tempfile.mkdtemp(prefix="cperf-bench-", dir=args.work_dir))
        self.port = args.port
        env = {**os.environ, **cmd_env, "STACKLING_IMAGE__BUILD_TINY_IMAGE": "never",
               "STACKLING_IDENTITY__PASSWORD_HASH_ROUNDS": "4",
               "STACKLING_LOG__LEVEL": "WARNING",
               # the benchmark boots more servers than Nova's default project quota allows
               "STACKLING_COMPUTE__QUOTAS__INSTANCES": "-1",
               "STACKLING_COMPUTE__QUOTAS__CORES": "-1",
               "STACKLING_COMPUTE__QUOTAS__RAM": "-1"}
        self.log = open(self.data / "stackling.log", "ab")  # stays open while it runs
        self.argv = ["sim", "--hosts", str(hosts), "--data-dir", str(self.data), "--host",
                     "127.0.0.1", "--port", str(self.port)]
        print(f"stackling {self.commit}: {' '.join(self.argv)}", flush=True)
        t0 = time.monotonic()
        self.proc = subprocess.Popen([*cmd, *self.argv], env=env, stdout=self.log,
                                     stderr=self.log, start_new_session=True)
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + args.start_timeout
        while not (self.data / "clouds.yaml").exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop(keep=True)
                raise Failure("stackling sim did not start: "
                              f"{(self.data / 'stackling.log').read_text()[-1500:]}")
            time.sleep(0.25)
        wait_http(f"{self.url}/compute/", args.start_timeout, self.proc)
        self.start_s = round(time.monotonic() - t0, 1)
        self.tree = ProcTree(self.proc.pid)

    def password(self) -> str:
        import yaml

        clouds = yaml.safe_load((self.data / "clouds.yaml").read_text())
        return str(clouds["clouds"]["stackling"]["auth"]["password"])

    def stop(self, keep: bool) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()
        if not keep:
            shutil.rmtree(self.data, ignore_errors=True)


class Client:
    """The load generator's view of the cloud: an admin token, an image, a flavor."""

    def __init__(self, sim: Sim) -> None:
        self.sim = sim
        self.http = httpx.AsyncClient(base_url=sim.url, timeout=60.0,
                                      limits=httpx.Limits(max_connections=64))
        self.headers: dict[str, str] = {}
        self.image_id = ""

    async def setup(self) -> None:
        body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"id": "default"}, "password": self.sim.password()}}},
            "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}}
        r = await self.http.post("/identity/v3/auth/tokens", json=body)
        if r.status_code != 201:
            raise Failure(f"token: {r.status_code} {r.text[:300]}")
        self.headers = {"X-Auth-Token": r.headers["X-Subject-Token"],
                        "OpenStack-API-Version": "compute 2.37"}
        r = await self.http.post("/image/v2/images", headers=self.headers, json={
            "name": "bench", "disk_format": "raw", "container_format": "bare",
            "visibility": "public"})
        if r.status_code != 201:
            raise Failure(f"image create: {r.status_code} {r.text[:300]}")
        self.image_id = r.json()["id"]
        r = await self.http.put(f"/image/v2/images/{self.image_id}/file", content=b"\0" * 512,
                                headers={**self.headers,
                                         "Content-Type": "application/octet-stream"})
        if r.status_code != 204:
            raise Failure(f"image upload: {r.status_code} {r.text[:300]}")

    async def boot(self, name: str) -> str:
        r = await self.http.post(f"{COMPUTE}/servers", headers=self.headers, json={
            "server": {"name": name, "imageRef": self.image_id, "flavorRef": "1",
                       "networks": "none"}})
        if r.status_code != 202:
            raise Failure(f"boot: {r.status_code} {r.text[:300]}")
        return str(r.json()["server"]["id"])

    async def delete(self, server_id: str) -> None:
        r = await self.http.delete(f"{COMPUTE}/servers/{server_id}", headers=self.headers)
        if r.status_code != 204:
            raise Failure(f"delete: {r.status_code} {r.text[:300]}")

    async def status(self, server_id: str) -> tuple[str, Any]:
        status, server = await self.show(server_id)
        return status, (server or {}).get("fault")

    async def show(self, server_id: str) -> tuple[str, dict[str, Any] | None]:
        r = await self.http.get(f"{COMPUTE}/servers/{server_id}", headers=self.headers)
        if r.status_code == 404:
            return "GONE", None
        server = r.json()["server"]
        return str(server["status"]), server

    async def wait(self, server_id: str, want: str, poll: float, limit: float = 60.0
                   ) -> tuple[int, dict[str, Any] | None]:
        """Poll until ``want`` (``ACTIVE`` or ``GONE``). Returns how many GETs it took and
        the server as the last one showed it."""
        deadline = time.monotonic() + limit
        polls = 0
        while True:
            status, server = await self.show(server_id)
            fault = (server or {}).get("fault")
            polls += 1
            if status == want:
                return polls, server
            if status == "ERROR":
                raise Failure(f"{server_id} went to ERROR: {fault}")
            if time.monotonic() > deadline:
                raise Failure(f"{server_id} is {status}, not {want}, after {limit} s")
            await asyncio.sleep(poll)

    async def metric(self, name: str) -> dict[str, float]:
        """Samples of one histogram on /metrics: {'sum': .., 'count': .., 'le=0.005': ..}."""
        r = await self.http.get("/metrics/", follow_redirects=True)
        out: dict[str, float] = {}
        for line in r.text.splitlines():
            if not line.startswith(name):
                continue
            key, _, value = line.rpartition(" ")
            if key.startswith(f"{name}_sum"):
                out["sum"] = float(value)
            elif key.startswith(f"{name}_count"):
                out["count"] = float(value)
            elif key.startswith(f"{name}_bucket"):
                le = key.split('le="', 1)[1].split('"', 1)[0]
                out[f"le={le}"] = float(value)
        return out

    async def close(self) -> None:
        await self.http.aclose()


class Poller:
    """One ``GET /servers/detail?changes-since`` loop for many waiting workers.

    ``changes-since`` is the registration time of the oldest waiter (less :data:`SLACK`,
    to the microsecond): a change a waiter expects happens after it registered, so its
    ``updated_at`` is in the window whenever its write commits. (A window that moved with
    the clock could miss a change stamped before its transaction committed.) Until
    2026-11-22 the stamp was cut to the second and a whole second earlier, which made each
    poll list about two seconds of changes instead of the last few hundred milliseconds."""

    def __init__(self, client: Client, interval: float) -> None:
        self.client = client
        self.interval = interval
        self.waiting: dict[tuple[str, str], tuple[asyncio.Future[None], dt.datetime]] = {}
        self.polls = 0
        self._task: asyncio.Task[None] | None = None

    def expect(self, server_id: str, status: str) -> asyncio.Future[None]:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiting[(server_id, status)] = (future, dt.datetime.now(dt.UTC))
        return future

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            if not self.waiting:
                continue
            oldest = min(at for _, at in self.waiting.values())
            stamp = (oldest - SLACK).isoformat(timespec="microseconds").replace("+00:00", "Z")
            r = await self.client.http.get(
                f"{COMPUTE}/servers/detail", headers=self.client.headers,
                params={"changes-since": stamp, "limit": "1000"})
            self.polls += 1
            if r.status_code != 200:
                raise Failure(f"poll: {r.status_code} {r.text[:300]}")
            for server in r.json()["servers"]:
                status = "GONE" if server["status"] == "DELETED" else server["status"]
                if status == "ERROR":
                    for key in [k for k in self.waiting if k[0] == server["id"]]:
                        self.waiting.pop(key)[0].set_exception(
                            Failure(f"{server['id']} went to ERROR: {server.get('fault')}"))
                    continue
                entry = self.waiting.pop((server["id"], status), None)
                if entry is not None and not entry[0].done():
                    entry[0].set_result(None)

    def alive(self) -> str:
        if self._task is None or not self._task.done():
            return "yes"
        return repr(self._task.exception())

    def __enter__(self) -> Poller:
        self._task = asyncio.create_task(self.run())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()


async def measure_latency(client: Client, sim: Sim, boots: int, poll: float
                          ) -> dict[str, Any]:
    """(a) sequential boots; the time from POST to the first GET that shows ACTIVE."""
    for n in range(3):  # warm-up: first-use costs (imports, caches) are not boot latency
        sid = await client.boot(f"warm-{n}")
        await client.wait(sid, "ACTIVE", poll)
        await client.delete(sid)
        await client.wait(sid, "GONE", poll)
    latencies: list[float] = []  # until a GET shows ACTIVE
    launched: list[float] = []  # until the ACTIVE transition (the server's launched_at)
    posts: list[float] = []  # the POST's own answer
    polls = 0
    window = CpuWindow()
    client_cpu0 = time.process_time()
    cpu0 = sim.tree.cpu_seconds()
    for n in range(boots):
        wall0 = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        t0 = time.perf_counter()
        sid = await client.boot(f"lat-{n}")
        posts.append((time.perf_counter() - t0) * 1000)
        count, server = await client.wait(sid, "ACTIVE", poll)
        polls += count
        latencies.append((time.perf_counter() - t0) * 1000)
        stamp = (server or {}).get("OS-SRV-USG:launched_at")
        if stamp:  # the same clock: server and client run on this machine
            launched.append((dt.datetime.fromisoformat(stamp) - wall0).total_seconds() * 1000)
        await client.delete(sid)
        await client.wait(sid, "GONE", 2 * poll)
    cpu = sim.tree.cpu_seconds() - cpu0
    load = window.stop()
    out = {"boots": boots, "hosts": sim.hosts, "poll_ms": poll * 1000,
           "launched_p50_ms": round(percentile(launched, 0.5), 1),
           "launched_p90_ms": round(percentile(launched, 0.9), 1),
           "launched_p99_ms": round(percentile(launched, 0.99), 1),
           "post_p50_ms": round(percentile(posts, 0.5), 1),
           "post_p99_ms": round(percentile(posts, 0.99), 1),
           "p50_ms": round(percentile(latencies, 0.5), 1),
           "p90_ms": round(percentile(latencies, 0.9), 1),
           "p99_ms": round(percentile(latencies, 0.99), 1),
           "mean_ms": round(statistics.fmean(latencies), 1),
           "min_ms": round(min(latencies), 1), "max_ms": round(max(latencies), 1),
           "polls_per_boot": round(polls / boots, 1),
           "server_cpu_ms_per_boot_and_delete": round(1000 * cpu / boots, 1),
           "other_cores": _others(load, cpu, client_cpu0)}
    print(f"(a) API->ACTIVE over {boots} boots, {sim.hosts} hosts: launched_at p50 "
          f"{out['launched_p50_ms']} ms, p99 {out['launched_p99_ms']} ms; seen by polling p50 "
          f"{out['p50_ms']} ms, p99 {out['p99_ms']} ms", flush=True)
    return out


async def measure_throughput(client: Client, sim: Sim, cycles: int, concurrency: int,
                             poll: float) -> dict[str, Any]:
    """(b) boot+delete cycles at a fixed concurrency; cycles completed per second."""
    started = done = 0
    cycle_ms: list[float] = []

    async def worker(w: int, poller: Poller) -> None:
        nonlocal started, done
        n = 0
        while started < cycles:
            started += 1
            t0 = time.perf_counter()
            sid = await client.boot(f"tp-{w}-{n}")
            await _one_cycle(client, poller, sid)
            cycle_ms.append((time.perf_counter() - t0) * 1000)
            done += 1
            n += 1

    with Poller(client, poll) as warm:  # warm-up at the same concurrency, not counted
        await asyncio.gather(*(_warm_cycle(client, warm, w) for w in range(concurrency)))
    window = CpuWindow()
    client_cpu0 = time.process_time()
    cpu0 = sim.tree.cpu_seconds()
    t0 = time.perf_counter()
    with Poller(client, poll) as poller:
        await asyncio.gather(*(worker(w, poller) for w in range(concurrency)))
    elapsed = time.perf_counter() - t0
    cpu = sim.tree.cpu_seconds() - cpu0
    load = window.stop()
    out = {"cycles": done, "concurrency": concurrency, "hosts": sim.hosts,
           "poll_ms": poll * 1000, "seconds": round(elapsed, 2),
           "per_second": round(done / elapsed, 1),
           "cycle_p50_ms": round(percentile(cycle_ms, 0.5), 1),
           "cycle_p99_ms": round(percentile(cycle_ms, 0.99), 1),
           "polls": poller.polls,
           "server_cpu_ms_per_cycle": round(1000 * cpu / max(done, 1), 1),
           "server_busy_cores": round(cpu / elapsed, 2),
           "other_cores": _others(load, cpu, client_cpu0)}
    print(f"(b) boot+delete at concurrency {concurrency}, {sim.hosts} hosts: "
          f"{out['per_second']}/s ({done} cycles in {out['seconds']} s)", flush=True)
    return out


async def _warm_cycle(client: Client, poller: Poller, w: int) -> None:
    await _one_cycle(client, poller, await client.boot(f"warm-{w}"))


async def _one_cycle(client: Client, poller: Poller, sid: str) -> None:
    for want in ("ACTIVE", "GONE"):
        future = poller.expect(sid, want)
        if want == "GONE":
            await client.delete(sid)
        try:
            await asyncio.wait_for(future, 60)
        except TimeoutError:
            status, fault = await client.status(sid)
            raise Failure(f"{sid} did not become {want} in 60 s: it is {status} "
                          f"({fault}); poller alive: {poller.alive()}") from None


def _others(load: dict[str, float], server_cpu: float, client_cpu0: float) -> float:
    """Cores used by other processes: the machine's busy time minus the server's and ours."""
    mine = server_cpu + time.process_time() - client_cpu0
    return round(max(0.0, (load["busy_cpu_s"] - mine) / load["wall_s"]), 2)


def _bucket_bound(hist: dict[str, float], q: float) -> float:
    """The upper bound of the bucket holding quantile ``q`` (ms)."""
    count = hist.get("count", 0)
    bounds = sorted((float(k[3:]), v) for k, v in hist.items()
                    if k.startswith("le=") and k != "le=+Inf")
    for bound, cumulative in bounds:
        if cumulative >= q * count:
            return round(bound * 1000, 2)
    return float("inf")


async def measure_scheduling(client: Client, sim: Sim, boots: int, poll: float
                             ) -> dict[str, Any]:
    """(c) sequential boots; the scheduler's own histogram of time per request."""
    for n in range(3):
        sid = await client.boot(f"warm-{n}")
        await client.wait(sid, "ACTIVE", poll, limit=300)
    before = await client.metric(SCHED_METRIC)
    latencies = []
    for n in range(boots):
        t0 = time.perf_counter()
        sid = await client.boot(f"sched-{n}")
        await client.wait(sid, "ACTIVE", poll, limit=300)
        latencies.append((time.perf_counter() - t0) * 1000)
    after = await client.metric(SCHED_METRIC)
    if "count" not in after:
        raise Failure(f"no {SCHED_METRIC} on /metrics (a stackling without it?)")
    delta = {k: after[k] - before.get(k, 0.0) for k in after}
    count = delta["count"]
    out = {"boots": boots, "hosts": sim.hosts, "requests": int(count),
           "mean_ms": round(1000 * delta["sum"] / count, 2) if count else None,
           "p50_bucket_ms": _bucket_bound(delta, 0.5),
           "p99_bucket_ms": _bucket_bound(delta, 0.99),
           "api_to_active_p50_ms": round(percentile(latencies, 0.5), 1),
           "api_to_active_p99_ms": round(percentile(latencies, 0.99), 1)}
    print(f"(c) scheduling with {sim.hosts} hosts: mean {out['mean_ms']} ms per request "
          f"(p50 <= {out['p50_bucket_ms']} ms, p99 <= {out['p99_bucket_ms']} ms)", flush=True)
    return out


async def run_case(args: argparse.Namespace, hosts: int, what: str) -> dict[str, Any]:
    sim = Sim(args, hosts)
    print(f"  sim with {hosts} hosts up in {sim.start_s} s", flush=True)
    client = Client(sim)
    try:
        await client.setup()
        poll = args.poll_ms / 1000
        if what == "latency":
            out = await measure_latency(client, sim, args.boots, poll)
        elif what == "throughput":
            out = await measure_throughput(client, sim, args.cycles, args.concurrency,
                                           args.tp_poll_ms / 1000)
        else:
            out = await measure_scheduling(client, sim, args.sched_boots, poll)
        out["start_s"] = sim.start_s
        out["idle_rss_mb"] = round(sim.tree.rss_kb() / 1024, 1)
        out["commit"] = sim.commit
        out["command"] = "stackling " + " ".join(sim.argv).replace(str(sim.data), "DATA")
        return out
    finally:
        await client.close()
        sim.stop(args.keep)


def markdown(res: dict[str, Any]) -> str:
    a, b, c = res["latency"], res["throughput"], res["scheduling"]

    def ok(good: bool) -> str:
        return "yes" if good else "**no**"

    lines = [
        BEGIN,
        f"Latest run: {res['date']}, stackling `{res['stackling_commit']}`, host: "
        f"{res['host']['nproc']} cores, {res['host']['cpu']}; `{res['command']}`.",
        "",
        "| case | figure | floor | met | anchor |",
        "|---|---|---|---|---|",
        f"| a. API -> ACTIVE, fake driver, {a['hosts']} hosts, {a['boots']} sequential "
        f"boots | p50 {a['launched_p50_ms']} ms, p90 {a['launched_p90_ms']} ms, p99 "
        f"{a['launched_p99_ms']} ms (POST sent -> `launched_at`); first GET showing ACTIVE: "
        f"p50 {a['p50_ms']} ms, p99 {a['p99_ms']} ms | p50 <= {FLOOR_P50_MS:.0f} ms | "
        f"{ok(a['launched_p50_ms'] <= FLOOR_P50_MS)} | |",
        f"| b. boot+delete, {b['hosts']} hosts, concurrency {b['concurrency']} | "
        f"{b['per_second']} per second ({b['cycles']} cycles in {b['seconds']} s; cycle p50 "
        f"{b['cycle_p50_ms']} ms, p99 {b['cycle_p99_ms']} ms) | >= {FLOOR_RATE:.0f}/s | "
        f"{ok(b['per_second'] >= FLOOR_RATE)} | OpenStack (Rally boot-and-delete, ~32 "
        f"cores): {ANCHOR_RATE}/s |",
        f"| c. scheduling per request, {c['hosts']} hosts ({c['requests']} requests) | "
        f"mean {c['mean_ms']} ms (p50 <= {c['p50_bucket_ms']} ms, p99 <= "
        f"{c['p99_bucket_ms']} ms by histogram bucket) | <= {FLOOR_SCHED_MS:.0f} ms | "
        f"{ok((c['mean_ms'] or 1e9) <= FLOOR_SCHED_MS)} | |",
        "",
        f"- Server CPU (the one `stackling sim` process): {a['server_cpu_ms_per_boot_and_delete']}"
        f" ms per boot+delete in (a); {b['server_cpu_ms_per_cycle']} ms per cycle in (b), "
        f"busy {b['server_busy_cores']} cores of {res['host']['nproc']} (one event loop: at "
        "most 1).",
        f"- Polling: (a) one `GET /servers/{{id}}` every {a['poll_ms']:.0f} ms "
        f"({a['polls_per_boot']} per boot); (b) one shared `GET /servers/detail?changes-since` "
        f"every {b['poll_ms']:.0f} ms ({b['polls']} in all).",
        f"- With {c['hosts']} hosts, API -> ACTIVE was p50 {c['api_to_active_p50_ms']} ms, p99 "
        f"{c['api_to_active_p99_ms']} ms; the sim started in {c['start_s']} s "
        f"(RSS {c['idle_rss_mb']} MB); with {b['hosts']} hosts in {b['start_s']} s "
        f"(RSS {b['idle_rss_mb']} MB).",
        f"- Other processes used {a['other_cores']} / {b['other_cores']} cores during (a) / "
        "(b): the machine is shared.",
        f"- Machine reference (`benchlib.python_speed_ms`, a fixed pure-Python workload, "
        f"lower is faster): {' / '.join(str(v) for v in res.get('python_speed_ms', []))} ms "
        "before the first case and after each.",
        "",
        END,
    ]
    return "\n".join(lines)


def update_readme(block: str) -> None:
    text = README.read_text() if README.exists() else "# Benchmarks\n"
    if BEGIN in text and END in text:
        pre, rest = text.split(BEGIN, 1)
        text = pre + block + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n## Compute control plane\n\n" + block + "\n"
    README.write_text(text)


async def amain(args: argparse.Namespace) -> dict[str, Any]:
    started = dt.datetime.now()
    found = stackling_command(args.stackling_rev)  # pin a revision for all the cases
    if found is not None and Path(found[1].get("PYTHONPATH", "")).name == "src":
        args.stackling_rev = str(Path(found[1]["PYTHONPATH"]).parent)
        args.commit_label = found[2]
    res: dict[str, Any] = {"date": started.isoformat(timespec="seconds"),
                           "host": host_info(), "args": dict(vars(args)),
                           "command": "bench/run compute " + " ".join(sys.argv[1:])}
    hosts = {"latency": args.latency_hosts, "throughput": args.throughput_hosts,
             "scheduling": args.sched_hosts}
    speeds = [python_speed_ms()]
    for case in args.only.split(","):
        res[case] = await run_case(args, hosts[case], case)
        res["stackling_commit"] = res[case]["commit"]
        speeds.append(python_speed_ms())
    res["python_speed_ms"] = speeds  # before the first case and after each
    res["command"] = res["command"].strip()
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog="See bench/README.md.")
    ap.add_argument("--boots", type=int, default=200, help="(a) sequential boots")
    ap.add_argument("--latency-hosts", type=int, default=1000)
    ap.add_argument("--cycles", type=int, default=1000, help="(b) boot+delete cycles")
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--throughput-hosts", type=int, default=1000)
    ap.add_argument("--sched-boots", type=int, default=100, help="(c) sequential boots")
    ap.add_argument("--sched-hosts", type=int, default=10000)
    ap.add_argument("--poll-ms", type=float, default=20.0,
                    help="(a), (c): GET /servers/{id} interval")
    ap.add_argument("--tp-poll-ms", type=float, default=25.0,
                    help="(b): the shared changes-since poll interval")
    ap.add_argument("--port", type=int, default=18150)
    ap.add_argument("--start-timeout", type=float, default=600.0)
    ap.add_argument("--work-dir", default="/tmp", help="where the data dirs go (cperf-bench-*)")
    ap.add_argument("--stackling-rev", default="HEAD",
                    help="git revision to run (default HEAD), 'worktree', or a source tree")
    ap.add_argument("--only", default="latency,throughput,scheduling",
                    help="comma-separated cases (a partial run leaves the README alone)")
    ap.add_argument("--keep", action="store_true", help="keep the data dirs")
    ap.add_argument("--no-readme", action="store_true")
    args = ap.parse_args()
    try:
        res = asyncio.run(amain(args))
    except Failure as exc:
        print(f"compute bench: {exc}", file=sys.stderr)
        return 1
    RESULTS.mkdir(exist_ok=True)
    stamp = dt.datetime.fromisoformat(res["date"]).strftime("%Y%m%d-%H%M%S")
    full = all(case in res for case in ("latency", "throughput", "scheduling"))
    names = ([f"compute-{stamp}.json", "compute-latest.json"] if full
             else [f"compute-partial-{stamp}.json"])  # a partial run leaves latest alone
    for name in names:
        (RESULTS / name).write_text(json.dumps(res, indent=2) + "\n")
    if full:
        block = markdown(res)
        if not args.no_readme:
            update_readme(block)
        print(block)
    return 0


if __name__ == "__main__":
    sys.exit(main())
