"""A real all-in-one cloud (``stackling up`` in a subprocess, temp data dir, free port) and
the stock clients pointed at it: the ``openstack`` CLI and openstacksdk."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RunningCloud:
    url: str
    data_dir: Path
    clouds_yaml: Path
    process: subprocess.Popen[bytes]
    log: Path

    def env(self, cloud: str = "stackling") -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
        env.update(OS_CLIENT_CONFIG_FILE=str(self.clouds_yaml), OS_CLOUD=cloud)
        return env

    def openstack(self, *args: str, cloud: str = "stackling", check: bool = True,
                  env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """Run the stock CLI; ``-f json`` output is parsed by :meth:`openstack_json`."""
        result = subprocess.run(["openstack", *args], env=env or self.env(cloud),
                                capture_output=True, text=True, timeout=120)
        if check and result.returncode != 0:
            raise AssertionError(f"openstack {' '.join(args)} failed ({result.returncode}):\n"
                                 f"{result.stderr}")
        return result

    def openstack_json(self, *args: str, cloud: str = "stackling") -> Any:
        return json.loads(self.openstack(*args, "-f", "json", cloud=cloud).stdout)

    def sdk(self, cloud: str = "stackling") -> Any:
        import openstack

        os.environ["OS_CLIENT_CONFIG_FILE"] = str(self.clouds_yaml)
        return openstack.connect(cloud=cloud)


def start_cloud(data_dir: Path, extra_env: dict[str, str] | None = None) -> RunningCloud:
    port = free_port()
    log = data_dir.parent / f"{data_dir.name}.log"
    env = {**os.environ, **(extra_env or {})}
    process = subprocess.Popen(
        [sys.executable, "-m", "stackling.cli.main", "up", "--data-dir", str(data_dir),
         "--port", str(port), "--virt", "fake", "--dataplane", "noop"],
        stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"stackling up exited early:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    else:
        process.kill()
        raise RuntimeError(f"stackling up did not become healthy:\n{log.read_text()}")
    return RunningCloud(url, data_dir, data_dir / "clouds.yaml", process, log)


def stop_cloud(cloud: RunningCloud) -> int:
    cloud.process.send_signal(signal.SIGTERM)
    try:
        return cloud.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        cloud.process.kill()
        raise


@pytest.fixture(scope="session")
def running_cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCloud]:
    data_dir = tmp_path_factory.mktemp("cloud") / "data"
    # cheap bcrypt keeps the suite fast; bench/ measures the real cost
    cloud = start_cloud(data_dir, {"STACKLING_IDENTITY__PASSWORD_HASH_ROUNDS": "4"})
    yield cloud
    assert stop_cloud(cloud) == 0, cloud.log.read_text()
