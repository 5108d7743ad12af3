#!/usr/bin/env python3
"""Identity benchmark: real Keystone and stackling, side by side, one run, same machine.

For each server (one at a time, so they never compete for the 2 cores), with the same wrk
load (concurrency 8, fixed duration):
  a. token validation       GET  /v3/auth/tokens  (X-Auth-Token admin, X-Subject-Token demo)
  b. token-method issue     POST /v3/auth/tokens  methods=[token], scope project (rescoping)
  c. password issue         POST /v3/auth/tokens  methods=[password], scope project
plus, once, in-process:
  d. bare bcrypt verify rate at the same cost, one process per core (password auth's ceiling)
  e. RSS (and PSS) of the whole server process tree: idle (start + one request) and peak under load

Writes bench/results/identity-<date>.json, bench/results/identity-latest.json and the table
between <!-- identity:begin --> and <!-- identity:end --> in bench/README.md.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import contextlib
import datetime as dt
import json
import os
import platform
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import (
    BENCH_DIR,
    CpuWindow,
    ProcTree,
    RssSampler,
    ensure_wrk,
    free_port,
    http,
    run_wrk,
    wait_http,
)
from keystone_anchor import ADMIN_PASSWORD, DEMO_PASSWORD, KeystoneAnchor

RESULTS = BENCH_DIR / "results"
README = BENCH_DIR / "README.md"
BEGIN, END = "<!-- identity:begin -->", "<!-- identity:end -->"
SCENARIOS = ("validate", "token_issue", "password_issue")
LABELS = {"validate": "a. token validation (GET /v3/auth/tokens)",
          "token_issue": "b. token-method issue (rescope)",
          "password_issue": "c. password issue (project scope)"}


# ------------------------------------------------------------------ d. bare bcrypt

def _bcrypt_loop(args: tuple[bytes, float]) -> tuple[int, float]:
    import bcrypt

    hashed, seconds = args
    n, t0 = 0, time.process_time()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        bcrypt.checkpw(b"bench-password", hashed)
        n += 1
    return n, time.process_time() - t0


def bcrypt_rate(rounds: int, seconds: float, workers: int) -> dict[str, Any]:
    """Verifies/s with one process per core (bcrypt's GIL release is not relied on)."""
    import bcrypt

    hashed = bcrypt.hashpw(b"bench-password", bcrypt.gensalt(rounds))
    with cf.ProcessPoolExecutor(workers) as ex:
        list(ex.map(_bcrypt_loop, [(hashed, 0.5)] * workers))  # warm the workers
        t0 = time.monotonic()
        out = list(ex.map(_bcrypt_loop, [(hashed, seconds)] * workers))
        wall = time.monotonic() - t0
    count = sum(n for n, _ in out)
    cpu = sum(c for _, c in out)
    return {"rounds": rounds, "workers": workers, "verifies": count,
            "rate_per_s": round(count / wall, 2),
            "per_cpu_second": round(count / cpu, 2) if cpu else None,
            "bcrypt_version": bcrypt.__version__}


def hash_costs(data_dir: Path) -> list[int]:
    """bcrypt costs found in the password columns of the server's SQLite files."""
    costs: set[int] = set()
    for db in list(data_dir.glob("*.db")) + list(data_dir.glob("*.sqlite")):
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as c:
            tables = [r[0] for r in c.execute("select name from sqlite_master where type='table'")]
            for t in tables:
                cols = [r[1] for r in c.execute(f"pragma table_info('{t}')")]
                for col in cols:
                    if "password" not in col or col.endswith(("_at", "_count")):
                        continue
                    for (v,) in c.execute(f'select "{col}" from "{t}" limit 20'):
                        if isinstance(v, str) and v.startswith("$2") and v[3:4] == "$":
                            costs.add(int(v[4:6]))
    return sorted(costs)


# ------------------------------------------------------------------ targets

@dataclass
class Target:
    name: str
    auth_url: str            # .../v3
    admin_password: str
    demo_password: str
    tree: ProcTree
    data_dir: Path
    info: dict[str, Any] = field(default_factory=dict)


def password_body(user: str, password: str, project: str | None) -> dict[str, Any]:
    auth: dict[str, Any] = {"identity": {"methods": ["password"], "password": {"user": {
        "name": user, "domain": {"id": "default"}, "password": password}}}}
    if project:
        auth["scope"] = {"project": {"name": project, "domain": {"id": "default"}}}
    return {"auth": auth}


def token_body(token: str, project: str) -> dict[str, Any]:
    return {"auth": {"identity": {"methods": ["token"], "token": {"id": token}},
                     "scope": {"project": {"name": project, "domain": {"id": "default"}}}}}


class Failure(Exception):
    pass


def _issue(url: str, body: dict[str, Any], what: str) -> str:
    r = http("POST", url, body)
    tok = r.header("X-Subject-Token")
    if r.status != 201 or not tok:
        raise Failure(f"{what}: POST {url} -> {r.status} {r.body[:300]!r}")
    return tok


def drain(tree: ProcTree, limit: float = 60.0) -> float:
    """Wait until the server stops burning CPU on requests wrk already gave up on
    (a password request left in flight costs a whole bcrypt). Returns seconds waited."""
    t0 = time.monotonic()
    last = tree.cpu_seconds()
    while time.monotonic() - t0 < limit:
        time.sleep(0.5)
        now = tree.cpu_seconds()
        if now - last < 0.05:
            break
        last = now
    return round(time.monotonic() - t0, 1)


def measure(t: Target, duration: float, concurrency: int, warmup: float) -> dict[str, Any]:
    url = f"{t.auth_url}/auth/tokens"
    out: dict[str, Any] = {"info": t.info, "failures": []}
    admin = _issue(url, password_body("admin", t.admin_password, "admin"), "admin token")
    out["rss_idle_kb"] = t.tree.rss_kb()
    out["pss_idle_kb"] = t.tree.pss_kb()
    out["processes"] = t.tree.describe()
    demo = _issue(url, password_body("demo", t.demo_password, "demo"), "demo token")
    try:
        unscoped = _issue(url, password_body("admin", t.admin_password, None), "unscoped")
        out["rescope_from"] = "unscoped"
    except Failure as e:
        out["failures"].append(str(e))
        unscoped, out["rescope_from"] = admin, "project-scoped"
    out["hash_costs"] = hash_costs(t.data_dir)

    cases = {
        "validate": ({"WRK_METHOD": "GET",
                      "WRK_HEADERS": f"X-Auth-Token: {admin}\nX-Subject-Token: {demo}"}, 200),
        "token_issue": ({"WRK_METHOD": "POST",
                         "WRK_BODY": json.dumps(token_body(unscoped, "admin"))}, 201),
        "password_issue": ({"WRK_METHOD": "POST", "WRK_BODY": json.dumps(
            password_body("admin", t.admin_password, "admin"))}, 201),
    }
    peak_rss = peak_pss = 0
    for name, (env, expect) in cases.items():
        # one probe with urllib first: a wrong status is reported with its body
        body = json.loads(env["WRK_BODY"]) if "WRK_BODY" in env else None
        hdrs = dict(h.split(": ", 1) for h in env.get("WRK_HEADERS", "").split("\n") if h)
        probe = http(env["WRK_METHOD"], url, body, hdrs)
        if probe.status != expect:
            out["failures"].append(f"{name}: {env['WRK_METHOD']} {url} -> {probe.status} "
                                   f"(expected {expect}) {probe.body[:300]!r}")
            out[name] = {"error": f"status {probe.status}"}
            continue
        print(f"  {t.name}: {name} ...", flush=True)
        if warmup > 0:
            run_wrk(url, script="request.lua", env=env, duration=warmup,
                    connections=concurrency)
            drain(t.tree)
        cpu0 = t.tree.cpu_seconds()
        sched0 = t.tree.sched_seconds()
        window = CpuWindow()
        with RssSampler(t.tree) as sampler:
            res = run_wrk(url, script="request.lua", env=env, duration=duration,
                          connections=concurrency)
        system = window.stop()
        server_cpu = t.tree.cpu_seconds() - cpu0
        sched1 = t.tree.sched_seconds()
        runq_wait = sched1[1] - sched0[1]
        drained = drain(t.tree)
        d = res.as_dict()
        busy = server_cpu / res.duration_s if res.duration_s else 0.0
        d.update({"server_cpu_s": round(server_cpu, 2), "server_busy_cores": round(busy, 2),
                  "per_server_cpu_s": round(res.requests / server_cpu, 1) if server_cpu else None,
                  "system": system,
                  "foreign_cpu_s": round(system["busy_cpu_s"] - server_cpu - res.wrk_cpu_s, 2),
                  "peak_rss_kb": sampler.peak_rss_kb, "peak_pss_kb": sampler.peak_pss_kb,
                  "drain_s": drained,
                  # run-queue wait: time the server's threads were ready but got no CPU
                  "server_runq_wait_s": round(runq_wait, 2)})
        if busy < 0.5 and name != "password_issue" and res.latency_ms["p50"] > 10:
            out["failures"].append(
                f"{name}: the server was busy only {busy:.2f} cores while p50 latency was "
                f"{res.latency_ms['p50']} ms: latency-bound, not CPU-bound (waits, locks, "
                f"or Nagle + delayed ACK on keep-alive connections: ~40 ms stalls)")
        if res.non_2xx or any(res.errors.values()):
            out["failures"].append(f"{name}: {res.non_2xx} non-2xx responses, "
                                   f"socket errors {res.errors} out of {res.requests}")
        out[name] = d
        peak_rss = max(peak_rss, sampler.peak_rss_kb)
        peak_pss = max(peak_pss, sampler.peak_pss_kb)
        print(f"  {t.name}: {name}: {d['rps']} req/s, p50 {d['latency_ms']['p50']} ms, "
              f"p99 {d['latency_ms']['p99']} ms, {d['per_server_cpu_s']} req/server-CPU-s, "
              f"non-2xx {res.non_2xx}", flush=True)
    out["rss_loaded_peak_kb"] = peak_rss
    out["pss_loaded_peak_kb"] = peak_pss
    return out


# ------------------------------------------------------------------ the two servers

def run_keystone(args: argparse.Namespace) -> dict[str, Any]:
    print(f"keystone: setting up (cache={args.keystone_cache}) ...", flush=True)
    with KeystoneAnchor(workers=args.keystone_workers, cache=args.keystone_cache,
                        hash_rounds=args.rounds) as ks:
        t = Target("keystone", ks.auth_url, ADMIN_PASSWORD, DEMO_PASSWORD, ks.tree, ks.dir,
                   {"version": ks.version(), "server": f"gunicorn {args.keystone_workers} sync "
                    "workers", "cache": args.keystone_cache, "db": "sqlite",
                    "token_provider": "fernet"})
        return measure(t, args.duration, args.concurrency, args.warmup)


REPO = BENCH_DIR.parent
RUN_MAIN = "import sys; from stackling.cli.main import main; sys.exit(main())"


def stackling_command(rev: str) -> tuple[list[str], dict[str, str], str] | None:
    """(argv prefix, extra env, commit) for `stackling` at ``rev``.

    ``rev`` = a git revision: that commit's ``src/`` is exported (git archive) to
    bench/.work/stackling-src-<sha> and run with PYTHONPATH, so a half-edited working tree
    never gets measured and the result names its commit. ``worktree`` = the installed
    ``stackling`` command as it is. A directory with ``src/stackling``: that tree.
    """
    if Path(rev, "src", "stackling", "cli", "main.py").exists():  # a source tree
        src = Path(rev, "src").resolve()
        return [sys.executable, "-c", RUN_MAIN], {"PYTHONPATH": str(src)}, f"dir:{rev}"
    if rev == "worktree":
        exe = shutil.which("stackling")
        if exe:
            return [exe], {}, _git_head() + "+worktree"
        return None
    r = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--verify", "--short",
                        f"{rev}^{{commit}}"], capture_output=True, text=True, check=False)
    sha = r.stdout.strip()
    if r.returncode != 0 or not sha:
        raise Failure(f"unknown git revision {rev!r}: {r.stderr.strip()}")
    dest = BENCH_DIR / ".work" / f"stackling-src-{sha}"
    if not (dest / "src" / "stackling" / "cli" / "main.py").exists():
        tmp = dest.with_suffix(".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        arch = subprocess.run(["git", "-C", str(REPO), "archive", sha, "src"],
                              capture_output=True, check=False)
        if arch.returncode != 0:
            return None
        subprocess.run(["tar", "-x", "-C", str(tmp)], input=arch.stdout, check=True)
        if not (tmp / "src" / "stackling" / "cli" / "main.py").exists():
            shutil.rmtree(tmp, ignore_errors=True)
            return None
        shutil.rmtree(dest, ignore_errors=True)
        tmp.rename(dest)
    return [sys.executable, "-c", RUN_MAIN], {"PYTHONPATH": str(dest / "src")}, sha


def run_stackling(args: argparse.Namespace) -> dict[str, Any]:
    found = stackling_command(args.stackling_rev)
    if found is None:
        raise Failure("skipped: no `stackling` command (src/stackling/cli/main.py not there yet)")
    cmd, cmd_env, commit = found
    import yaml

    data = Path(tempfile.mkdtemp(prefix="stackling-", dir=BENCH_DIR / ".work"))
    port = free_port()
    env = {**os.environ, **cmd_env,
           "STACKLING_IDENTITY__PASSWORD_HASH_ROUNDS": str(args.rounds)}
    log = open(data / "stackling.log", "ab")  # stays open for the server
    full = [*cmd, "up", "--data-dir", str(data), "--host", "127.0.0.1", "--port", str(port),
            *args.stackling_arg]
    print(f"stackling {commit}: {' '.join(full[len(cmd):])}", flush=True)
    proc = subprocess.Popen(full, env=env, stdout=log, stderr=log, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}/identity"
        deadline = time.monotonic() + 120
        while not (data / "clouds.yaml").exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise Failure(f"stackling up did not write clouds.yaml (rc {proc.poll()}); "
                              f"log: {(data / 'stackling.log').read_text()[-1500:]}")
            time.sleep(0.25)
        wait_http(f"{base}/v3", 120, proc)
        clouds = yaml.safe_load((data / "clouds.yaml").read_text())["clouds"]
        auth_url = clouds["stackling"]["auth"]["auth_url"].rstrip("/")
        auth_url = auth_url if auth_url.endswith("/v3") else auth_url + "/v3"
        version = _stackling_version()
        t = Target("stackling", auth_url, clouds["stackling"]["auth"]["password"],
                   clouds["stackling-demo"]["auth"]["password"], ProcTree(proc.pid), data,
                   {"version": version or "dev", "commit": commit,
                    "command": " ".join(full[len(cmd):])})
        return measure(t, args.duration, args.concurrency, args.warmup)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if not args.keep:
            shutil.rmtree(data, ignore_errors=True)


def _stackling_version() -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version("stackling")
    except importlib.metadata.PackageNotFoundError:
        return "dev"


def _git_head() -> str:
    r = subprocess.run(["git", "-C", str(BENCH_DIR.parent), "rev-parse", "--short", "HEAD"],
                       capture_output=True, text=True, check=False)
    return r.stdout.strip()


# ------------------------------------------------------------------ report

def _rps(side: dict[str, Any] | None, name: str) -> float | None:
    if not side or not isinstance(side.get(name), dict):
        return None
    v = side[name].get("rps")
    return float(v) if v is not None else None


def _cpu_ratio(ks: dict[str, Any] | None, sl: dict[str, Any] | None, name: str
               ) -> float | None:
    k = (ks or {}).get(name, {}).get("per_server_cpu_s") if ks else None
    s = (sl or {}).get(name, {}).get("per_server_cpu_s") if sl else None
    return round(s / k, 2) if k and s else None


def _of_bcrypt_cpu(sl: dict[str, Any] | None, bc: dict[str, Any]) -> float | None:
    v = ((sl or {}).get("password_issue") or {}).get("per_server_cpu_s")
    return round(v / bc["per_cpu_second"], 3) if v and bc.get("per_cpu_second") else None


def verdicts(res: dict[str, Any]) -> dict[str, Any]:
    ks, sl, bc = res.get("keystone"), res.get("stackling"), res["bcrypt"]["rate_per_s"]
    out: dict[str, Any] = {}
    for name in ("validate", "token_issue"):
        k, s = _rps(ks, name), _rps(sl, name)
        ratio = round(s / k, 2) if k and s is not None else None
        out[name] = {"ratio": ratio, "cpu_ratio": _cpu_ratio(ks, sl, name),
                     "target": ">= 10x keystone", "met": ratio is not None and ratio >= 10}
    k, s = _rps(ks, "password_issue"), _rps(sl, "password_issue")
    of_bcrypt = round(s / bc, 3) if s is not None and bc else None
    out["password_issue"] = {
        "ratio": round(s / k, 2) if k and s is not None else None,
        "cpu_ratio": _cpu_ratio(ks, sl, "password_issue"), "of_bcrypt": of_bcrypt,
        # contention-proof twin: stackling's password issues per server CPU-second over
        # bcrypt verifies per CPU-second (1.0 = nothing but bcrypt costs CPU)
        "of_bcrypt_cpu": _of_bcrypt_cpu(sl, res["bcrypt"]),
        "target": ">= 80% of bare bcrypt and >= keystone",
        "met": (of_bcrypt is not None and of_bcrypt >= 0.8 and k is not None
                and s is not None and s >= k)}
    return out


def _fmt(v: float | None, unit: str = "") -> str:
    if v is None:
        return "-"
    return f"{v:,.1f}{unit}" if v < 100 else f"{v:,.0f}{unit}"


def _foreign(res: dict[str, Any]) -> str:
    busy, wall = 0.0, 0.0
    for side in ("keystone", "stackling"):
        for name in SCENARIOS:
            d = (res.get(side) or {}).get(name) or {}
            if "foreign_cpu_s" in d:
                busy += max(0.0, d["foreign_cpu_s"])
                wall += d["system"]["wall_s"]
    return f"{busy / wall:.2f}" if wall else "?"


def markdown(res: dict[str, Any]) -> str:
    ks, sl, v = res.get("keystone") or {}, res.get("stackling") or {}, res["verdicts"]
    h = res["host"]
    lines = [
        BEGIN,
        f"### Identity - {res['date']} (stackling {sl.get('info', {}).get('commit', '?')}, "
        f"keystone {ks.get('info', {}).get('version', '?')})",
        "",
        f"{h['nproc']} cores ({h['cpu']}), load avg before {h['loadavg_before']}; wrk "
        f"{res['config']['wrk_threads']} thread, {res['config']['concurrency']} connections, "
        f"{res['config']['duration_s']:.0f} s per case; bcrypt cost {res['config']['rounds']} on "
        f"both sides; Keystone: {ks.get('info', {}).get('server', '?')}, cache "
        f"{ks.get('info', {}).get('cache', '?')}, SQLite, Fernet.",
        "",
        f"Other processes on the machine used {_foreign(res)} cores on average during the runs "
        "(the box is shared): absolute req/s move with that, req per server CPU-second much less.",
        "",
        "| case | keystone req/s | stackling req/s | ratio | p50 / p99 ms (ks -> sl) "
        "| req per server CPU-s (ks -> sl) | CPU-normalised ratio | target | met |",
        "|---|---:|---:|---:|---|---|---:|---|---|",
    ]
    for name in SCENARIOS:
        k, s = ks.get(name) or {}, sl.get(name) or {}
        kl, sll = k.get("latency_ms", {}), s.get("latency_ms", {})
        vd = v[name]
        target = vd["target"]
        if name == "password_issue" and vd.get("of_bcrypt") is not None:
            target += f" (sl: {vd['of_bcrypt'] * 100:.0f}% of bcrypt/s"
            if vd.get("of_bcrypt_cpu") is not None:
                target += f", {vd['of_bcrypt_cpu'] * 100:.0f}% per CPU-s"
            target += ")"
        lines.append(
            f"| {LABELS[name]} | {_fmt(k.get('rps'))} | {_fmt(s.get('rps'))} | "
            f"{_fmt(vd['ratio'], 'x')} | {_fmt(kl.get('p50'))} / {_fmt(kl.get('p99'))} -> "
            f"{_fmt(sll.get('p50'))} / {_fmt(sll.get('p99'))} | "
            f"{_fmt(k.get('per_server_cpu_s'))} -> {_fmt(s.get('per_server_cpu_s'))} | "
            f"{_fmt(vd.get('cpu_ratio'), 'x')} | {target} | {'yes' if vd['met'] else 'no'} |")
    bc = res["bcrypt"]
    lines += [
        f"| d. bare bcrypt verify ({bc['workers']} processes) | | | | | "
        f"{bc['per_cpu_second']} per CPU-s | | {bc['rate_per_s']}/s = password ceiling "
        f"(before {bc.get('rate_before', '?')}, after {bc.get('rate_after', '?')}) | |",
        "",
        "| memory (whole process tree) | keystone | stackling |",
        "|---|---:|---:|",
    ]
    for key, label in (("rss_idle_kb", "RSS idle (start + 1 request)"),
                       ("rss_loaded_peak_kb", "RSS peak under load"),
                       ("pss_idle_kb", "PSS idle"), ("pss_loaded_peak_kb", "PSS peak under load")):
        kv, sv = ks.get(key), sl.get(key)
        lines.append(f"| {label} | {kv / 1024:.0f} MiB | " if kv else f"| {label} | - | ")
        lines[-1] += f"{sv / 1024:.0f} MiB |" if sv else "- |"
    notes = []
    if res.get("stackling_skipped"):
        notes.append(f"stackling: {res['stackling_skipped']}")
    for side in ("keystone", "stackling"):
        for f in (res.get(side) or {}).get("failures", []):
            notes.append(f"{side}: {f}")
    if notes:
        lines += ["", "Problems seen in this run:", ""] + [f"- {n}" for n in notes]
    lines += ["", f"Raw figures: `bench/results/{res['file']}`.", END]
    return "\n".join(lines)


def update_readme(block: str) -> None:
    text = README.read_text() if README.exists() else "# Benchmarks\n"
    if BEGIN in text and END in text:
        pre, rest = text.split(BEGIN, 1)
        post = rest.split(END, 1)[1]
        text = pre + block + post
    else:
        text = text.rstrip("\n") + "\n\n## Identity\n\n" + block + "\n"
    README.write_text(text)


def host_info() -> dict[str, Any]:
    cpu = platform.processor() or "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return {"nproc": os.cpu_count(), "cpu": cpu, "kernel": platform.release(),
            "python": platform.python_version(),
            "loadavg_before": Path("/proc/loadavg").read_text().split()[:3]}


def measure_bcrypt(args: argparse.Namespace, when: str) -> dict[str, Any]:
    n = os.cpu_count() or 1
    print(f"bcrypt ({when}): cost {args.rounds}, {n} processes, {args.duration:.0f} s ...",
          flush=True)
    r = bcrypt_rate(args.rounds, args.duration, n)
    print(f"bcrypt ({when}): {r['rate_per_s']} verifies/s, {r['per_cpu_second']} per CPU-s",
          flush=True)
    return r


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog="See bench/README.md.")
    ap.add_argument("--duration", type=float, default=15.0, help="seconds per case (15)")
    ap.add_argument("--warmup", type=float, default=2.0, help="unrecorded seconds first (2)")
    ap.add_argument("--concurrency", type=int, default=8, help="wrk connections (8)")
    ap.add_argument("--rounds", type=int, default=12, help="bcrypt cost on both sides (12)")
    ap.add_argument("--only", choices=["keystone", "stackling"], default=None)
    ap.add_argument("--keystone-cache", choices=["memory", "none"], default="memory",
                    help="Keystone [cache] backend: dogpile in-process memory, or off")
    ap.add_argument("--keystone-workers", type=int, default=2)
    ap.add_argument("--stackling-arg", action="append", default=None,
                    help="extra `stackling up` argument (repeatable; default: "
                         "--virt fake --dataplane noop)")
    ap.add_argument("--stackling-rev", default="HEAD",
                    help="git revision of stackling to run (its src/ is exported, so "
                         "uncommitted edits are not measured; default HEAD), or 'worktree' "
                         "for the installed `stackling` command as it is, or a directory "
                         "holding src/stackling (to measure a patch before committing it)")
    ap.add_argument("--keep", action="store_true", help="keep the stackling data dir")
    ap.add_argument("--no-write", action="store_true", help="print JSON; write no files")
    args = ap.parse_args()
    if args.stackling_arg is None:
        args.stackling_arg = ["--virt", "fake", "--dataplane", "noop"]
    ensure_wrk()
    (BENCH_DIR / ".work").mkdir(exist_ok=True)

    now = dt.datetime.now()
    res: dict[str, Any] = {
        "date": now.isoformat(timespec="seconds"), "host": host_info(),
        "config": {"duration_s": args.duration, "warmup_s": args.warmup,
                   "concurrency": args.concurrency, "wrk_threads": 1, "rounds": args.rounds,
                   "keystone_cache": args.keystone_cache,
                   "keystone_workers": args.keystone_workers}}
    res["bcrypt"] = measure_bcrypt(args, "before")
    if args.only != "stackling":
        res["keystone"] = run_keystone(args)
    if args.only != "keystone":
        try:
            res["stackling"] = run_stackling(args)
        except Failure as e:
            print(f"stackling: {e}", flush=True)
            res["stackling_skipped"] = str(e)
    after = measure_bcrypt(args, "after")
    before = res["bcrypt"]
    # the machine may be shared: average the two, keep both
    res["bcrypt"] = {**before, "verifies": before["verifies"] + after["verifies"],
                     "rate_per_s": round((before["rate_per_s"] + after["rate_per_s"]) / 2, 2),
                     "per_cpu_second": round(((before["per_cpu_second"] or 0)
                                              + (after["per_cpu_second"] or 0)) / 2, 2),
                     "rate_before": before["rate_per_s"], "rate_after": after["rate_per_s"]}
    res["verdicts"] = verdicts(res)
    res["file"] = f"identity-{now.strftime('%Y%m%d-%H%M%S')}.json"
    text = json.dumps(res, indent=2) + "\n"
    if args.no_write:
        print(text)
        return 0
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / res["file"]).write_text(text)
    (RESULTS / "identity-latest.json").write_text(text)
    block = markdown(res)
    update_readme(block)
    print(block)
    return 0


if __name__ == "__main__":
    sys.exit(main())
