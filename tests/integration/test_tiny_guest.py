"""Build the tiny guest and boot it under QEMU (TCG): metadata service, config drives, disk.

Networking is QEMU user mode (slirp) with ``restrict=on``: the guest reaches nothing but
slirp's own DHCP server and 169.254.169.254:80, which ``guestfwd`` hands, one connection at a
time, to ``busybox nc`` connecting to a metadata server this module runs on 127.0.0.1.
(``guestfwd=...-tcp:127.0.0.1:PORT`` would open a single connection at start-up and
serve only the first request; the ``cmd:`` form spawns one ``nc`` per connection.)

Every QEMU is killed when its test ends, and dies with the test process (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import ctypes
import json
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from stackling.image.guest import builder, host

QEMU = shutil.which("qemu-system-x86_64")
GENISOIMAGE = shutil.which("genisoimage") or shutil.which("xorrisofs")
BOOT_TIMEOUT = 90.0
MARK = "stackling-tiny:"

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(QEMU is None, reason="apt-get install qemu-system-x86"),
]

KEY_A = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHRpbnktZ3Vlc3QtdGVzdC1rZXk= alice@test"
KEY_B = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 bob@test"


def meta_data(hostname: str) -> dict[str, Any]:
    return {
        "uuid": "0b5d2a61-6b1c-4c55-9d4e-2f0c3c0e0001",
        "meta": {"purpose": "test"},
        "public_keys": {"alice": KEY_A + "\n", "bob": KEY_B},
        "keys": [{"name": "alice", "type": "ssh", "data": KEY_A + "\n"}],
        "hostname": f"{hostname}.novalocal",
        "name": hostname,
        "launch_index": 0,
        "availability_zone": "nova",
        "project_id": "3f2e1d0c9b8a47f6a5e4d3c2b1a09f8e",
        "devices": [],
    }


@pytest.fixture(scope="module")
def guest(tmp_path_factory: pytest.TempPathFactory) -> builder.TinyGuest:
    try:
        inputs = builder.gather_inputs()
    except host.HostMissing as exc:
        pytest.skip(str(exc))
    cache = tmp_path_factory.mktemp("guest-cache")
    started = time.monotonic()
    guest = builder.build_tiny_guest_sync(cache, inputs=inputs)
    print(f"\ntiny guest built in {time.monotonic() - started:.1f}s: " + ", ".join(
        f"{p.name} {p.stat().st_size} bytes" for p in guest.files()))
    return guest


class MetadataServer:
    """OpenStack metadata on 127.0.0.1 (what the guest sees as 169.254.169.254)."""

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests.append(self.path)
                body = server.files.get(self.path)
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def metadata() -> Iterator[MetadataServer]:
    server = MetadataServer({
        "/openstack/latest/meta_data.json": json.dumps(meta_data("vm-md")).encode(),
        "/openstack/latest/user_data":
            b"#!/bin/sh\necho \"user-data says hi from $(hostname)\"\n"
            b"grep -c ssh- /root/.ssh/authorized_keys\nexit 3\n",
    })
    yield server
    server.close()


def _die_with_parent() -> None:
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class Qemu:
    def __init__(self, workdir: Path, args: list[str], metadata_port: int | None) -> None:
        self.log = workdir / "console.log"
        self.qmp_path = workdir / "qmp.sock"
        busybox = host.find_busybox()
        netdev = "user,id=n0,restrict=on,net=169.254.169.0/24,dhcpstart=169.254.169.15"
        if metadata_port is not None:
            netdev += (",guestfwd=tcp:169.254.169.254:80-"
                       f"cmd:{busybox} nc 127.0.0.1 {metadata_port}")
        assert QEMU is not None
        argv = [QEMU, "-accel", "tcg", "-machine", "pc", "-m", "256", "-nodefaults",
                "-no-user-config", "-display", "none", "-no-reboot",
                "-serial", f"file:{self.log}",
                "-qmp", f"unix:{self.qmp_path},server=on,wait=off",
                "-netdev", netdev, "-device", "virtio-net-pci,netdev=n0", *args]
        self.started = time.monotonic()
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     preexec_fn=_die_with_parent)

    def console(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def markers(self) -> list[str]:
        return [line.split(MARK, 1)[1].strip() for line in self.console().splitlines()
                if MARK in line]

    def wait_for(self, marker: str, timeout: float = BOOT_TIMEOUT) -> float:
        """Seconds since start until a ``stackling-tiny: <marker>`` line appeared."""
        deadline = self.started + timeout
        while time.monotonic() < deadline:
            if any(m == marker or m.startswith(marker + " ") for m in self.markers()):
                return time.monotonic() - self.started
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        exited = self.proc.poll() is not None
        state = f"exited {self.proc.returncode}" if exited else "running"
        if exited and self.proc.stdout:
            state += ": " + self.proc.stdout.read().decode(errors="replace")
        pytest.fail(f"no '{MARK} {marker}' within {timeout:.0f}s (qemu {state}); "
                    f"console tail:\n{self.console()[-3000:]}")

    def qmp(self, command: str) -> None:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(10)
            sock.connect(str(self.qmp_path))
            reader = sock.makefile("rb")
            reader.readline()  # greeting
            for cmd in ("qmp_capabilities", command):
                sock.sendall(json.dumps({"execute": cmd}).encode() + b"\n")
                while True:  # skip events until the command's answer
                    reply = json.loads(reader.readline())
                    if "return" in reply or "error" in reply:
                        assert "error" not in reply, reply
                        break

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)
        if self.proc.stdout:
            self.proc.stdout.close()


@pytest.fixture
def qemus() -> Iterator[list[Qemu]]:
    started: list[Qemu] = []
    yield started
    for vm in started:
        vm.kill()


def kernel_args(guest: builder.TinyGuest) -> list[str]:
    return ["-kernel", str(guest.kernel), "-initrd", str(guest.initrd),
            "-append", guest.cmdline]


def config_drive_tree(root: Path, hostname: str, user_data: bytes) -> Path:
    latest = root / "openstack" / "latest"
    latest.mkdir(parents=True)
    (latest / "meta_data.json").write_text(json.dumps(meta_data(hostname)))
    (latest / "user_data").write_bytes(user_data)
    return root


def assert_in_order(markers: list[str], expected: list[str]) -> None:
    position = 0
    for want in expected:
        for index in range(position, len(markers)):
            if markers[index] == want or markers[index].startswith(want + " "):
                position = index + 1
                break
        else:
            pytest.fail(f"marker {want!r} missing or out of order in {markers}")


def test_kernel_boot_metadata_service(guest: builder.TinyGuest, metadata: MetadataServer,
                                      qemus: list[Qemu], tmp_path: Path) -> None:
    vm = Qemu(tmp_path, kernel_args(guest), metadata.port)
    qemus.append(vm)
    up = vm.wait_for("up")
    ready = vm.wait_for("ready")
    print(f"\nkernel boot (metadata service): up after {up:.1f}s, ready after {ready:.1f}s")
    assert_in_order(vm.markers(), [
        "up", "ip 169.254.169.15 on eth0",
        "metadata from http://169.254.169.254/openstack/latest",
        "instance 0b5d2a61-6b1c-4c55-9d4e-2f0c3c0e0001 hostname vm-md",
        "installed 2 public key(s)",
        "user-data start", "user-data done rc=3", "ready",
    ])
    console = vm.console()
    assert "user-data says hi from vm-md" in console
    assert metadata.requests[:2] == ["/openstack/latest/meta_data.json",
                                     "/openstack/latest/user_data"]


@pytest.mark.skipif(GENISOIMAGE is None, reason="apt-get install genisoimage")
def test_config_drive_cdrom_wins(guest: builder.TinyGuest, metadata: MetadataServer,
                                 qemus: list[Qemu], tmp_path: Path) -> None:
    tree = config_drive_tree(tmp_path / "cd", "vm-cd",
                             b"#!/bin/sh\necho user-data from the config drive\n")
    iso = tmp_path / "config.iso"
    assert GENISOIMAGE is not None
    subprocess.run([GENISOIMAGE, "-quiet", "-o", str(iso), "-V", "config-2", "-r", "-J",
                    str(tree)], check=True)
    vm = Qemu(tmp_path, [*kernel_args(guest),
                         "-drive", f"file={iso},if=ide,media=cdrom,readonly=on"],
              metadata.port)
    qemus.append(vm)
    vm.wait_for("ready")
    assert_in_order(vm.markers(), [
        "up", "ip 169.254.169.15 on eth0", "metadata from config drive /dev/sr0",
        "instance 0b5d2a61-6b1c-4c55-9d4e-2f0c3c0e0001 hostname vm-cd",
        "installed 2 public key(s)", "user-data done rc=0", "ready",
    ])
    assert "user-data from the config drive" in vm.console()
    assert metadata.requests == []  # the config drive was enough


def test_disk_image_two_nics_vfat_config_drive_acpi_poweroff(
        guest: builder.TinyGuest, qemus: list[Qemu], tmp_path: Path) -> None:
    if guest.disk is None:
        pytest.skip("no bootable disk built (see the build's message for the packages)")
    mkfs, mcopy = host.which("mkfs.vfat"), host.which("mcopy")
    assert mkfs and mcopy
    tree = config_drive_tree(tmp_path / "cd", "vm-disk", b"#!/bin/sh\nexit 7\n")
    drive = tmp_path / "config.vfat"
    subprocess.run([mkfs, "-C", "-n", "config-2", str(drive), "4096"], check=True,
                   capture_output=True)
    subprocess.run([mcopy, "-s", "-i", str(drive), str(tree / "openstack"), "::/"],
                   check=True, env={"MTOOLS_SKIP_CHECK": "1", "PATH": "/usr/bin:/bin"})
    vm = Qemu(tmp_path, [
        "-drive", f"file={guest.disk},if=virtio,format=qcow2,snapshot=on",
        "-drive", f"file={drive},if=virtio,format=raw",
        # a second NIC on its own (restricted) slirp network: every NIC gets DHCP
        "-netdev", "user,id=n1,restrict=on", "-device", "virtio-net-pci,netdev=n1",
    ], None)
    qemus.append(vm)
    ready = vm.wait_for("ready")
    print(f"\ndisk boot (SYSLINUX, vfat config drive): ready after {ready:.1f}s")
    assert "SYSLINUX" in vm.console()
    assert "ip 10.0.2.15 on eth1" in vm.markers()
    assert_in_order(vm.markers(), [
        "up", "ip 169.254.169.15 on eth0", "metadata from config drive /dev/vdb",
        "instance 0b5d2a61-6b1c-4c55-9d4e-2f0c3c0e0001 hostname vm-disk",
        "installed 2 public key(s)", "user-data done rc=7", "ready",
    ])
    time.sleep(1.0)  # let busybox init take over from /init
    vm.qmp("system_powerdown")
    vm.wait_for("power button: powering off", timeout=30)
    assert vm.proc.wait(timeout=30) == 0
