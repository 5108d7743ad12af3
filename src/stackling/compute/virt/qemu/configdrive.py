"""The config drive: an ISO 9660 image labelled ``config-2`` with the metadata documents
(``openstack/<version>/...`` and ``ec2/<version>/meta-data.json``), made with genisoimage
(or xorriso's mkisofs)."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from stackling.compute.metadata import content
from stackling.compute.rpcapi import InstanceInfo


class ConfigDriveError(Exception):
    pass


def tool() -> list[str] | None:
    for name in ("genisoimage", "mkisofs"):
        found = shutil.which(name)
        if found:
            return [found]
    xorriso = shutil.which("xorriso")
    return [xorriso, "-as", "mkisofs"] if xorriso else None


def write_tree(root: Path, instance: InstanceInfo, vifs: list[dict[str, Any]]) -> None:
    files = content.openstack_files(instance, vifs)
    for version in (*content.OPENSTACK_VERSIONS, "latest"):
        folder = root / "openstack" / version
        folder.mkdir(parents=True)
        for name, data in files.items():
            (folder / name).write_bytes(data)
    ec2 = json.dumps(content.ec2_meta_data(instance)).encode()
    for version in (*content.EC2_VERSIONS, "latest"):
        folder = root / "ec2" / version
        folder.mkdir(parents=True)
        (folder / "meta-data.json").write_bytes(ec2)
        if "user_data" in files:
            (folder / "user-data").write_bytes(files["user_data"])


def build(dest: Path, instance: InstanceInfo, vifs: list[dict[str, Any]]) -> None:
    """Write the ISO (blocking: run through run_blocking)."""
    argv = tool()
    if argv is None:
        raise ConfigDriveError("No ISO 9660 tool on this host for the config drive "
                               "(apt-get install genisoimage).")
    with tempfile.TemporaryDirectory(prefix="configdrive-", dir=dest.parent) as tmp:
        tree = Path(tmp) / "tree"
        write_tree(tree, instance, vifs)
        done = subprocess.run([*argv, "-quiet", "-o", str(dest), "-V", "config-2", "-r",
                               "-J", "-l", "-input-charset", "utf-8", str(tree)],
                              capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        dest.unlink(missing_ok=True)
        raise ConfigDriveError(f"Building the config drive failed: {done.stderr[-300:]}")
