"""The guest's shell and awk, run for real on the host (busybox when installed, else the
host's sh/awk): syntax, the metadata JSON scanner, the DHCP event script."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from stackling.image.guest import scripts

BUSYBOX = shutil.which("busybox")
SHELLS = [s for s in (["busybox", "sh"] if BUSYBOX else None, ["sh"]) if s]
AWKS = [a for a in (["busybox", "awk"] if BUSYBOX else None,
                    ["mawk"] if shutil.which("mawk") else None,
                    ["gawk"] if shutil.which("gawk") else None) if a]


def test_render_init_lists_modules_in_order() -> None:
    text = scripts.render_init(["virtio_ring", "virtio", "virtio_net"])
    assert "for m in virtio_ring virtio virtio_net; do" in text
    assert text.startswith("#!/bin/sh\n")
    assert "__" not in text  # every placeholder filled
    assert f"{scripts.METADATA_URL}/meta_data.json" in text
    custom = scripts.render_init(["virtio"], metadata_url="http://10.0.0.1:8775/openstack/x")
    assert "http://10.0.0.1:8775/openstack/x/user_data" in custom


@pytest.mark.parametrize("bad", ["", "a b", "x;reboot", "$(id)", "../../x"])
def test_render_init_refuses_unsafe_module_names(bad: str) -> None:
    with pytest.raises(ValueError):
        scripts.render_init(["virtio", bad])


def test_userland_files() -> None:
    files = scripts.userland_files(["virtio"])
    assert files["init"][1] == 0o755
    assert files["etc/stackling-tiny/udhcpc.sh"][1] == 0o755
    assert files["etc/acpi/PWRF/00000080"][1] == 0o755
    assert files["etc/passwd"][0].startswith(b"root:x:0:0:")


@pytest.mark.parametrize("shell", SHELLS, ids=lambda s: s[0])
@pytest.mark.parametrize("name", ["init", "etc/stackling-tiny/lib.sh",
                                  "etc/stackling-tiny/udhcpc.sh", "etc/acpi/PWRF/00000080"])
def test_shell_syntax(shell: list[str], name: str, tmp_path: Path) -> None:
    path = tmp_path / "script"
    path.write_bytes(scripts.userland_files(["virtio", "virtio_net"])[name][0])
    proc = subprocess.run([*shell, "-n", str(path)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


NOVA_META = {
    "uuid": "1f2e3d4c-0000-4000-8000-000000000001",
    "meta": {"role": "web", "hostname": "not-this-one"},
    "public_keys": {"mykey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG/x+y= alice@host\n",
                    "other": "ssh-rsa AAAAB3NzaC1yc2EAAAADAQAB bob \"the\" builder"},
    "keys": [{"name": "mykey", "type": "ssh", "data": "ssh-ed25519 AAAA alice@host\n"}],
    "hostname": "vm-one.novalocal",
    "name": "vm-one",
    "launch_index": 0,
    "availability_zone": "nova",
    "random_seed": "c2VlZA==",
    "project_id": "6c4e4e0a4ad54d2f9b4fb1c3e3f1b0b7",
    "devices": [],
}


def run_awk(awk: list[str], mode: str, key: str, document: str, tmp_path: Path) -> str:
    program = tmp_path / "json.awk"
    program.write_text(scripts.JSON_AWK)
    data = tmp_path / "meta_data.json"
    data.write_text(document)
    proc = subprocess.run([*awk, "-v", f"mode={mode}", "-v", f"want={key}", "-f",
                           str(program), str(data)], capture_output=True, text=True,
                          check=True)
    return proc.stdout


@pytest.mark.parametrize("awk", AWKS, ids=lambda a: a[0])
@pytest.mark.parametrize("indent", [None, 2], ids=["compact", "pretty"])
def test_json_scanner(awk: list[str], indent: int | None, tmp_path: Path) -> None:
    document = json.dumps(NOVA_META, indent=indent)
    assert run_awk(awk, "str", "uuid", document, tmp_path) == NOVA_META["uuid"] + "\n"
    # "meta" (user metadata, before "hostname" in Nova's order) has its own "hostname":
    # only top-level keys count
    assert run_awk(awk, "str", "hostname", document, tmp_path) == "vm-one.novalocal\n"
    assert run_awk(awk, "str", "availability_zone", document, tmp_path) == "nova\n"
    assert run_awk(awk, "str", "name", document, tmp_path) == "vm-one\n"  # not keys[0]
    keys = run_awk(awk, "obj", "public_keys", document, tmp_path).splitlines()
    assert keys == ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG/x+y= alice@host",
                    'ssh-rsa AAAAB3NzaC1yc2EAAAADAQAB bob "the" builder']
    assert run_awk(awk, "str", "missing", document, tmp_path) == ""
    assert run_awk(awk, "obj", "missing", document, tmp_path) == ""
    assert run_awk(awk, "obj", "meta", document, tmp_path).splitlines() == [
        "web", "not-this-one"]


@pytest.mark.parametrize("awk", AWKS, ids=lambda a: a[0])
def test_json_scanner_escapes(awk: list[str], tmp_path: Path) -> None:
    document = ('{"public_keys": {"a": "ssh-rsa AAA\\/B\\u0041 c\\\\d\\n\\n", "b": '
                '"x\\u00e9y"}, "hostname": "h\\"q"}')
    assert run_awk(awk, "obj", "public_keys", document, tmp_path).splitlines() == [
        "ssh-rsa AAA/BA c\\d", "x?y"]
    assert run_awk(awk, "str", "hostname", document, tmp_path) == 'h"q\n'
    assert run_awk(awk, "obj", "public_keys", "{}", tmp_path) == ""
    assert run_awk(awk, "obj", "public_keys", "", tmp_path) == ""


# Never let the event script touch the host's interfaces: ``ip`` is a shell function
# defined by the stub lib.sh (functions win over busybox's built-in applets, which a PATH
# stub would not), and as root the script also runs in a network namespace of its own.
ISOLATE = (["unshare", "--net"] if os.geteuid() == 0 and shutil.which("unshare") else [])


@pytest.fixture
def dhcp_env(tmp_path: Path) -> dict[str, str]:
    """The event script with stub ``ip`` and ``say`` functions that log what they got."""
    lib = tmp_path / "lib.sh"
    lib.write_text(f'ip() {{ echo "$*" >>{tmp_path / "ip.log"}; }}\n'
                   f'say() {{ echo "$*" >>{tmp_path / "say.log"}; }}\n')
    return {
        "PATH": os.environ["PATH"],
        "TINY_LIB": str(lib), "TINY_STATE": str(tmp_path / "state"),
        "TINY_RESOLV": str(tmp_path / "resolv.conf"),
        "interface": "eth0", "ip": "10.0.0.5", "mask": "24", "mtu": "1450",
        "dns": "10.0.0.2 10.0.0.3", "domain": "example.org",
    }


def run_event(shell: list[str], event: str, env: dict[str, str], tmp_path: Path) -> None:
    script = tmp_path / "udhcpc.sh"
    script.write_text(scripts.UDHCPC_SH)
    subprocess.run([*ISOLATE, *shell, str(script), event], env=env, check=True)


@pytest.mark.parametrize("shell", SHELLS, ids=lambda s: s[0])
def test_dhcp_bound_with_router(shell: list[str], dhcp_env: dict[str, str],
                                tmp_path: Path) -> None:
    run_event(shell, "bound", {**dhcp_env, "router": "10.0.0.1 10.0.0.254"}, tmp_path)
    assert (tmp_path / "ip.log").read_text().splitlines() == [
        "link set dev eth0 mtu 1450",
        "addr flush dev eth0",
        "addr add 10.0.0.5/24 broadcast + dev eth0",
        "route add default via 10.0.0.1 dev eth0",
    ]
    assert (tmp_path / "say.log").read_text() == "ip 10.0.0.5 on eth0\n"
    assert (tmp_path / "resolv.conf").read_text() == (
        "nameserver 10.0.0.2\nnameserver 10.0.0.3\nsearch example.org\n")
    assert (tmp_path / "state" / "ip.eth0").read_text() == "10.0.0.5\n"
    # a renew of the same lease changes nothing and prints no second marker
    (tmp_path / "ip.log").unlink()
    run_event(shell, "renew", {**dhcp_env, "router": "10.0.0.1"}, tmp_path)
    assert "addr" not in (tmp_path / "ip.log").read_text()
    assert (tmp_path / "say.log").read_text() == "ip 10.0.0.5 on eth0\n"
    assert (tmp_path / "resolv.conf").read_text().count("nameserver 10.0.0.2") == 1


@pytest.mark.parametrize("shell", SHELLS, ids=lambda s: s[0])
def test_dhcp_classless_static_routes(shell: list[str], dhcp_env: dict[str, str],
                                      tmp_path: Path) -> None:
    env = {**dhcp_env, "router": "10.0.0.99",
           "staticroutes": "169.254.169.254/32 10.0.0.2 0.0.0.0/0 10.0.0.1 10.1.0.0/16 0.0.0.0"}
    run_event(shell, "bound", env, tmp_path)
    routes = [line for line in (tmp_path / "ip.log").read_text().splitlines()
              if line.startswith("route")]
    assert routes == ["route add 169.254.169.254/32 via 10.0.0.2 dev eth0",
                      "route add 0.0.0.0/0 via 10.0.0.1 dev eth0",
                      "route add 10.1.0.0/16 dev eth0"]


@pytest.mark.parametrize("shell", SHELLS, ids=lambda s: s[0])
def test_dhcp_deconfig(shell: list[str], dhcp_env: dict[str, str], tmp_path: Path) -> None:
    run_event(shell, "bound", dhcp_env, tmp_path)
    run_event(shell, "deconfig", dhcp_env, tmp_path)
    assert not (tmp_path / "state" / "ip.eth0").exists()
    assert (tmp_path / "ip.log").read_text().splitlines()[-2:] == [
        "addr flush dev eth0", "link set eth0 up"]
