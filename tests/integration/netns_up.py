"""``stackling up`` on the Linux bridge data plane inside a network namespace of its own
(``<stem><random>-host``, entered with ``nsenter --net``), for the tests that need real
bridges, taps, ``qdhcp-``/``qrouter-`` namespaces and nft tables without touching the host's
networking: the agent's namespaces get the same prefix (``[network_agent] netns_prefix``),
and the API is reached from a worker thread that has joined the namespace (``setns``).
Closing stops the cloud, kills what it started under its temporary directory and deletes
every namespace with the prefix."""

from __future__ import annotations

import ctypes
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import httpx
import yaml

CLONE_NEWNET = 0x40000000
T = TypeVar("T")


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=check, timeout=60)


def enter_netns(path: str) -> None:
    """Move the calling thread into the network namespace at ``path``."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns failed")
    finally:
        os.close(fd)


class NamespacedUp:
    def __init__(self, stem: str, port: int, up_args: Sequence[str],
                 env: dict[str, str]) -> None:
        self.prefix = f"{stem}{secrets.token_hex(2)}-"
        self.host = self.prefix + "host"
        self.tmp = Path(tempfile.mkdtemp(prefix=f"{stem}-"))
        self.data = self.tmp / "data"
        self.log = self.tmp / "up.log"
        sh("ip", "netns", "add", self.host)
        sh("ip", "netns", "exec", self.host, "ip", "link", "set", "lo", "up")
        self.pool = ThreadPoolExecutor(1, initializer=enter_netns,
                                       initargs=(f"/run/netns/{self.host}",))
        self.url = f"http://127.0.0.1:{port}"
        full_env = {**os.environ, "STACKLING_IDENTITY__PASSWORD_HASH_ROUNDS": "4",
                    "STACKLING_NETWORK_AGENT__NETNS_PREFIX": self.prefix,
                    "STACKLING_NETWORK_AGENT__TAP_POLL_INTERVAL": "0.2", **env}
        self.process = subprocess.Popen(
            ["nsenter", f"--net=/run/netns/{self.host}", sys.executable, "-m",
             "stackling.cli.main", "up", "--data-dir", str(self.data), "--port", str(port),
             *up_args],
            stdout=self.log.open("wb"), stderr=subprocess.STDOUT, env=full_env)

    def run(self, func: Callable[[], T]) -> T:
        """``func()`` on the thread inside the namespace."""
        return self.pool.submit(func).result()

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"stackling up exited:\n{self.log.read_text()[-3000:]}")
            try:
                if self.run(lambda: httpx.get(f"{self.url}/healthz", timeout=2)
                            ).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"not healthy:\n{self.log.read_text()[-3000:]}")

    def login(self, entry: str) -> str:
        """A project-scoped token for the ``clouds.yaml`` entry ``entry``."""
        auth = yaml.safe_load((self.data / "clouds.yaml").read_text())["clouds"][entry]["auth"]
        body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": auth["username"], "password": auth["password"],
            "domain": {"name": "Default"}}}},
            "scope": {"project": {"name": auth["project_name"],
                                  "domain": {"name": "Default"}}}}}
        resp = self.run(lambda: httpx.post(f"{self.url}/identity/v3/auth/tokens", json=body))
        resp.raise_for_status()
        return str(resp.headers["X-Subject-Token"])

    def until(self, check: Callable[[], Any], what: str, timeout: float,
              interval: float = 0.2) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = check()
            if value:
                return value
            time.sleep(interval)
        raise AssertionError(f"timed out waiting for {what}\n{self.log.read_text()[-4000:]}")

    def kill_started(self) -> None:
        """Kill processes the cloud started that outlive it (subclasses add theirs)."""
        for pid in sh("pgrep", "-f", f"dnsmasq.*{self.tmp}", check=False).stdout.split():
            sh("kill", pid, check=False)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.pool.shutdown()
        self.kill_started()
        for line in sh("ip", "netns", "list").stdout.splitlines():
            if line.startswith(self.prefix):
                sh("ip", "netns", "del", line.split()[0], check=False)
        shutil.rmtree(self.tmp, ignore_errors=True)
