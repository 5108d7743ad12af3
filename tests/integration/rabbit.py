"""A private rabbitmq-server node for integration tests (own ports, own epmd, own Erlang
cookie and data under a tmp dir, listening on 127.0.0.1 only; never the system RabbitMQ)."""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path


def _tool(name: str) -> str | None:
    # Debian's /usr/sbin wrappers su to the rabbitmq user and pin system paths: use the
    # real scripts so the node runs as us with our environment.
    real = Path("/usr/lib/rabbitmq/bin") / name
    return str(real) if real.exists() else shutil.which(name)


SERVER, CTL, EPMD = _tool("rabbitmq-server"), _tool("rabbitmqctl"), shutil.which("epmd")

def _free_ports(count: int) -> list[int]:
    """Free ports below 45000 (the CLI tools use the distribution port + 10000)."""
    ports: list[int] = []
    while len(ports) < count:
        port = random.randint(20000, 45000)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        if port not in ports:
            ports.append(port)
    return ports


class RabbitNode:
    """A private rabbitmq-server node."""

    USER = "stackling"
    PASSWORD = f"bus-pw-{uuid.uuid4().hex[:12]}"

    def __init__(self, base: Path) -> None:
        self.port, dist_port, epmd_port = _free_ports(3)
        self.name = "stackling-test@localhost"
        self.base = base
        self.log_path = base / "server.out"
        (base / "home").mkdir()
        (base / "enabled_plugins").write_text("[].\n")
        (base / "rabbitmq.conf").write_text(  # our user exists from the first boot on
            f"default_user = {self.USER}\ndefault_pass = {self.PASSWORD}\n"
            "default_permissions.configure = .*\ndefault_permissions.read = .*\n"
            "default_permissions.write = .*\nloopback_users = none\n"
        )
        (base / "rabbitmq-env.conf").write_text("")
        self.env = {
            **os.environ,
            "HOME": str(base / "home"),  # a fresh Erlang cookie
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(dist_port),
            "ERL_EPMD_PORT": str(epmd_port),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
            "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(base / "log"),
            "RABBITMQ_PID_FILE": str(base / "rabbitmq.pid"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
            "RABBITMQ_CONF_ENV_FILE": str(base / "rabbitmq-env.conf"),
            "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(base / "advanced.config"),
        }
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"amqp://{self.USER}:{self.PASSWORD}@127.0.0.1:{self.port}/"

    def ctl(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        assert CTL is not None
        return subprocess.run(
            [CTL, "-n", self.name, *args],
            env=self.env,
            cwd=self.base,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def start(self, timeout: float = 45) -> None:
        assert SERVER is not None
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [SERVER],
                env=self.env,
                cwd=self.base,  # erl_crash.dump lands here, not in the repo
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.await_startup(timeout)

    def await_startup(self, timeout: float = 45) -> None:
        """Poll the AMQP port (cheap: every rabbitmqctl run costs a second of CPU that the
        booting node needs), then confirm with ``rabbitmqctl await_startup``."""
        deadline = time.monotonic() + timeout
        while not self._port_open():
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"rabbitmq-server exited:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"rabbitmq-server did not start:\n{self.log_tail()}")
            time.sleep(0.1)
        done = self.ctl("await_startup", "--timeout", str(int(timeout)))
        assert done.returncode == 0, done.stderr

    def _port_open(self) -> bool:
        with socket.socket() as sock:
            sock.settimeout(0.5)
            return sock.connect_ex(("127.0.0.1", self.port)) == 0

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def kill(self) -> None:
        """SIGKILL the node: clients get no goodbye."""
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # rabbitmq shuts down cleanly on TERM
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
        if EPMD is not None:  # the node started a private epmd on our port: end it
            subprocess.run([EPMD, "-kill"], env=self.env, capture_output=True, check=False)
