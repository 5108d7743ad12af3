#!/usr/bin/env python3
"""VM boot: API request -> guest console marker with ``stackling up --virt qemu``, against
starting the same image with a bare ``qemu-system-x86_64`` command line, paired in one run.

    bench/run boot                     # = python3 bench/boot.py; ~3 min with TCG
    bench/run boot --rounds 3          # quicker, noisier
    bench/run boot --rev worktree      # the installed `stackling`, uncommitted edits too

One ``stackling up`` (the committed HEAD by default, see bench/identity.py) on 127.0.0.1
with ``--virt qemu`` (``[qemu] accel = tcg``: nested KVM hangs on these machines) registers
the tiny guest; a flavor of 128 MiB / 1 vCPU / disk 0 is created. A first, unrecorded boot
fills the host's image cache (its time is reported as ``cold``). Then ``--rounds`` pairs, the
order alternating (bare first, then stackling first, ...) so that drift in the machine's load
hits both sides alike:

- **stackling**: from sending ``POST /servers`` (image ``stackling-tiny``, ``networks:
  none``) until ``os-getConsoleOutput`` (polled every ``--poll-ms``) shows the guest's
  ``stackling-tiny: ready``. Split into *control plane* (POST -> the QEMU process exists:
  API, scheduler, conductor, agent, image cache, qcow2 overlay, config drive ISO, QEMU's
  own start-up until it daemonizes) and *guest* (QEMU process start -> marker seen). The
  server is deleted (and waited for) before the next run.
- **bare**: ``qemu-system-x86_64 -accel tcg -m 128 -nodefaults -display none -serial
  file:LOG -drive file=<the same cached base image>,if=virtio,snapshot=on``, from Popen
  until LOG (polled every ``--poll-ms``) shows the marker.
- **stackling's command line**: the exact QEMU command line stackling ran for the cold boot
  (read from ``/proc``; VGA + VNC, USB tablet, balloon, config drive CD-ROM, QMP, serial
  socket with its log file, ``-daemonize``) started by hand on a fresh overlay with a copy
  of that config drive: it separates the guest's share (devices) from the control plane's.

Figures: medians of each side, the ratio of medians and each pair's ratio. The floor is
stackling <= 1.2 x bare. Results go to bench/results/boot-*.json and between
<!-- boot:begin --> and <!-- boot:end --> in bench/README.md.
"""

from __future__ import annotations

import argparse
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
import yaml
from benchlib import BENCH_DIR, wait_http
from identity import Failure, host_info, stackling_command

README = BENCH_DIR / "README.md"
RESULTS = BENCH_DIR / "results"
BEGIN, END = "<!-- boot:begin -->", "<!-- boot:end -->"
MARKER = "stackling-tiny: ready"
FLOOR = 1.2


def boot_time_of(pid: int) -> float:
    """Wall-clock start time of a process (10 ms resolution: clock ticks since boot)."""
    with open(f"/proc/{pid}/stat", "rb") as fh:
        start_ticks = int(fh.read().rsplit(b")", 1)[1].split()[19])
    with open("/proc/uptime") as fh:
        uptime = float(fh.read().split()[0])
    return time.time() - uptime + start_ticks / os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """user + system CPU time of a process so far (threads included)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


class Cloud:
    def __init__(self, base: str, data_dir: Path) -> None:
        self.base = base
        self.data_dir = data_dir
        clouds = yaml.safe_load((data_dir / "clouds.yaml").read_text())
        auth = clouds["clouds"]["stackling"]["auth"]
        self.http = httpx.Client(timeout=60)
        r = self.http.post(f"{base}/identity/v3/auth/tokens", json={"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": auth["username"], "domain": {"name": auth["user_domain_name"]},
                "password": auth["password"]}}},
            "scope": {"project": {"name": auth["project_name"],
                                  "domain": {"name": auth["project_domain_name"]}}}}})
        r.raise_for_status()
        self.http.headers["X-Auth-Token"] = r.headers["X-Subject-Token"]
        self.http.headers["OpenStack-API-Version"] = "compute 2.37"

    def image(self, name: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            images = self.http.get(f"{self.base}/image/v2/images",
                                   params={"name": name}).json()["images"]
            active = [i["id"] for i in images if i["status"] == "active"]
            if active:
                return str(active[0])
            time.sleep(1)
        raise Failure(f"image {name} was not registered within {timeout:.0f} s "
                      "(does the host have linux-image-amd64 and busybox-static?)")

    def flavor(self) -> str:
        r = self.http.post(f"{self.base}/compute/v2.1/flavors", json={"flavor": {
            "name": "bench.boot", "ram": 128, "vcpus": 1, "disk": 0}})
        r.raise_for_status()
        return str(r.json()["flavor"]["id"])

    def boot_until_marker(self, image: str, flavor: str, poll: float, timeout: float,
                          keep: Path | None = None) -> dict[str, float]:
        """``keep``: copy the VM's QEMU command line and its config drive there (for the
        bare run with stackling's own command line)."""
        t0 = time.time()
        r = self.http.post(f"{self.base}/compute/v2.1/servers", json={"server": {
            "name": "bench", "imageRef": image, "flavorRef": flavor, "networks": "none"}})
        r.raise_for_status()
        sid = r.json()["server"]["id"]
        accepted = time.time()
        pidfile = self.data_dir / "instances" / sid / "pid"
        qemu_start = None
        polls = 0
        try:
            while time.time() - t0 < timeout:
                polls += 1
                if qemu_start is None and pidfile.exists():
                    with contextlib.suppress(OSError, ValueError, StopIteration):
                        qemu_start = boot_time_of(int(pidfile.read_text()))
                r = self.http.post(f"{self.base}/compute/v2.1/servers/{sid}/action",
                                   json={"os-getConsoleOutput": {"length": 50}})
                if r.status_code == 200 and MARKER in r.json()["output"]:
                    done = time.time()
                    if qemu_start is None:
                        qemu_start = boot_time_of(int(pidfile.read_text()))
                    cpu = cpu_seconds(int(pidfile.read_text()))
                    if keep is not None:
                        save_launch(pidfile.parent, keep)
                    return {"total": done - t0, "api_accept": accepted - t0,
                            "control_plane": qemu_start - t0, "guest": done - qemu_start,
                            "qemu_cpu": cpu}
                if polls % 20 == 0:  # a failed boot: look now and then, not every poll
                    server = self.http.get(f"{self.base}/compute/v2.1/servers/{sid}").json()
                    if server["server"]["status"] == "ERROR":
                        raise Failure(f"boot failed: {server['server'].get('fault')}")
                time.sleep(poll)
            raise Failure(f"no '{MARKER}' within {timeout:.0f} s")
        finally:
            self.delete(sid)

    def delete(self, sid: str) -> None:
        self.http.delete(f"{self.base}/compute/v2.1/servers/{sid}")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.http.get(f"{self.base}/compute/v2.1/servers/{sid}").status_code == 404:
                return
            time.sleep(0.2)


def save_launch(instance_dir: Path, keep: Path) -> None:
    keep.mkdir(parents=True, exist_ok=True)
    pid = int((instance_dir / "pid").read_text())
    with open(f"/proc/{pid}/cmdline", "rb") as fh:
        argv = [a.decode() for a in fh.read().split(b"\0") if a]
    (keep / "argv.json").write_text(json.dumps({"dir": str(instance_dir), "argv": argv}))
    if (instance_dir / "config.iso").exists():
        shutil.copyfile(instance_dir / "config.iso", keep / "config.iso")


def full_until_marker(disk: Path, keep: Path, poll: float, timeout: float
                      ) -> dict[str, float]:
    """stackling's exact QEMU command line (devices, VNC, config drive, daemonized),
    started by hand on a fresh overlay: the guest's share of stackling's time."""
    saved = json.loads((keep / "argv.json").read_text())
    run = keep / "run"
    shutil.rmtree(run, ignore_errors=True)
    run.mkdir()
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(disk), "-F", "qcow2",
                    str(run / "disk.qcow2")], check=True)
    shutil.copyfile(keep / "config.iso", run / "config.iso")
    argv = [a.replace(saved["dir"], str(run)) for a in saved["argv"]]
    t0 = time.time()
    subprocess.run(argv, check=True, stdin=subprocess.DEVNULL)
    log = run / "console.log"
    try:
        while time.time() - t0 < timeout:
            if log.exists() and MARKER.encode() in log.read_bytes():
                return {"total": time.time() - t0,
                        "qemu_cpu": cpu_seconds(int((run / "pid").read_text()))}
            time.sleep(poll)
        raise Failure(f"stackling's command line: no '{MARKER}' within {timeout:.0f} s")
    finally:
        with contextlib.suppress(OSError, ValueError):
            os.kill(int((run / "pid").read_text()), signal.SIGKILL)


def bare_until_marker(disk: Path, workdir: Path, poll: float, timeout: float
                      ) -> dict[str, float]:
    log = workdir / "bare-console.log"
    log.unlink(missing_ok=True)
    t0 = time.time()
    proc = subprocess.Popen(
        ["qemu-system-x86_64", "-accel", "tcg", "-m", "128", "-nodefaults",
         "-no-user-config", "-display", "none", "-serial", f"file:{log}",
         "-drive", f"file={disk},if=virtio,snapshot=on"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        while time.time() - t0 < timeout:
            if log.exists() and MARKER.encode() in log.read_bytes():
                return {"total": time.time() - t0, "qemu_cpu": cpu_seconds(proc.pid)}
            if proc.poll() is not None:
                err = proc.stderr.read().decode() if proc.stderr else ""
                raise Failure(f"bare qemu exited: {err}")
            time.sleep(poll)
        raise Failure(f"bare qemu: no '{MARKER}' within {timeout:.0f} s")
    finally:
        proc.kill()
        proc.wait()


def table(result: dict[str, Any]) -> str:
    s, b = result["stackling"], result["bare"]
    rows = [
        "| figure | bare qemu | stackling |",
        "|---|---|---|",
        f"| median API/Popen -> `ready` marker | {b['median']:.2f} s | {s['median']:.2f} s |",
        f"| of which control plane (POST -> QEMU process started) | - | "
        f"{s['median_control_plane']:.2f} s |",
        f"| of which guest (QEMU start -> marker seen) | {b['median']:.2f} s | "
        f"{s['median_guest']:.2f} s |",
        f"| stackling's own QEMU command line started by hand -> marker | "
        f"{result['full']['median']:.2f} s | |",
        f"| QEMU CPU seconds until the marker (median; less sensitive to other load) | "
        f"{b['median_cpu']:.2f} s (by hand with stackling's line: "
        f"{result['full']['median_cpu']:.2f} s) | {s['median_cpu']:.2f} s |",
        f"| ratio of medians (floor <= {FLOOR}) | | **{result['ratio']:.2f}** |",
        f"| per-pair ratios | | {', '.join(f'{r:.2f}' for r in result['pair_ratios'])} |",
        f"| cold first boot (image fetched into the cache) | | {result['cold']['total']:.2f} s |",
    ]
    return "\n".join(rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--port", type=int, default=18401)
    ap.add_argument("--rev", default="HEAD", help="git revision, 'worktree' or a tree")
    ap.add_argument("--poll-ms", type=float, default=100.0)
    ap.add_argument("--timeout", type=float, default=180.0)
    ap.add_argument("--no-readme", action="store_true")
    args = ap.parse_args()
    # SIGTERM unwinds like Ctrl-C, so the finally blocks kill the server and any VM
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if shutil.which("qemu-system-x86_64") is None:
        print("needs qemu-system-x86 and qemu-utils (apt-get install)", file=sys.stderr)
        return 2
    command = stackling_command(args.rev)
    if command is None:
        print(f"cannot run stackling at {args.rev}", file=sys.stderr)
        return 2
    argv, extra_env, commit = command
    poll = args.poll_ms / 1000
    workdir = Path(tempfile.mkdtemp(prefix="qemu-bench-"))
    data_dir = workdir / "data"
    env = {**os.environ, **extra_env, "STACKLING_QEMU__ACCEL": "tcg",
           "STACKLING_IDENTITY__PASSWORD_HASH_ROUNDS": "4"}
    base = f"http://127.0.0.1:{args.port}"
    log = (workdir / "stackling.log").open("wb")
    server = subprocess.Popen([*argv, "up", "--data-dir", str(data_dir), "--host", "127.0.0.1",
                               "--port", str(args.port), "--virt", "qemu",
                               "--dataplane", "noop"], env=env,
                              stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    result: dict[str, Any] = {"bench": "boot", "commit": commit, "host": host_info(),
                              "rounds": args.rounds, "poll_ms": args.poll_ms}
    try:
        wait_http(f"{base}/identity/v3", 120, server)
        cloud = Cloud(base, data_dir)
        image = cloud.image("stackling-tiny", 300)
        flavor = cloud.flavor()
        print("cold boot (fills the image cache) ...", flush=True)
        keep = workdir / "launch"
        result["cold"] = cloud.boot_until_marker(image, flavor, poll, args.timeout, keep)
        disk = data_dir / "_base" / image
        stack: list[dict[str, float]] = []
        bare: list[dict[str, float]] = []
        full: list[dict[str, float]] = []
        for n in range(args.rounds):
            order = ("bare", "full", "stackling") if n % 2 == 0 else (
                "stackling", "full", "bare")
            for side in order:
                if side == "bare":
                    bare.append(bare_until_marker(disk, workdir, poll, args.timeout))
                elif side == "full":
                    full.append(full_until_marker(disk, keep, poll, args.timeout))
                else:
                    stack.append(cloud.boot_until_marker(image, flavor, poll, args.timeout))
            print(f"round {n + 1}: cpu bare {bare[-1]['qemu_cpu']:.2f} s, by hand "
                  f"{full[-1]['qemu_cpu']:.2f} s, stackling {stack[-1]['qemu_cpu']:.2f} s; "
                  f"wall: bare {bare[-1]['total']:.2f} s, stackling's command line "
                  f"{full[-1]['total']:.2f} s, stackling "
                  f"{stack[-1]['total']:.2f} s (control plane "
                  f"{stack[-1]['control_plane']:.2f} s, guest {stack[-1]['guest']:.2f} s)",
                  flush=True)
        result["stackling"] = {
            "runs": stack, "median": statistics.median(r["total"] for r in stack),
            "median_control_plane": statistics.median(r["control_plane"] for r in stack),
            "median_guest": statistics.median(r["guest"] for r in stack),
            "median_api_accept": statistics.median(r["api_accept"] for r in stack),
            "median_cpu": statistics.median(r["qemu_cpu"] for r in stack)}
        result["bare"] = {"runs": bare, "median": statistics.median(r["total"] for r in bare),
                          "median_cpu": statistics.median(r["qemu_cpu"] for r in bare)}
        result["full"] = {"runs": full, "median": statistics.median(r["total"] for r in full),
                          "median_cpu": statistics.median(r["qemu_cpu"] for r in full),
                          "argv": json.loads((keep / "argv.json").read_text())["argv"]}
        result["ratio"] = result["stackling"]["median"] / result["bare"]["median"]
        result["pair_ratios"] = [s["total"] / b["total"] for s, b in zip(stack, bare,
                                                                         strict=True)]
        result["loadavg_after"] = Path("/proc/loadavg").read_text().split()[:3]
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()
        # a VM left behind by an interrupted run: kill it by its pidfile
        for pidfile in [*(data_dir / "instances").glob("*/pid"), workdir / "launch/run/pid"]:
            with contextlib.suppress(OSError, ValueError):
                os.kill(int(pidfile.read_text()), signal.SIGKILL)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    RESULTS.mkdir(exist_ok=True)
    text = json.dumps(result, indent=1)
    (RESULTS / f"boot-{stamp}.json").write_text(text)
    (RESULTS / "boot-latest.json").write_text(text)
    print(table(result))
    if not args.no_readme and BEGIN in README.read_text():
        readme = README.read_text()
        head, _, rest = readme.partition(BEGIN)
        _, _, tail = rest.partition(END)
        README.write_text(f"{head}{BEGIN}\n{table(result)}\n{END}{tail}")
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
