"""Data planes: the kernel side of networking (``linuxbridge``) and its no-op twin (``noop``).

The plugin table is :data:`DATAPLANES`; :func:`missing_tools` tells whether the Linux bridge
data plane can run here (root, ``ip``, ``nft``, ``dnsmasq``)."""

from __future__ import annotations

import os
import shutil

from stackling.network.dataplane.base import ApplyReport, Dataplane, is_compute_port
from stackling.network.dataplane.linuxbridge import LinuxBridgeDataplane, LinuxBridgeOptions
from stackling.network.dataplane.noop import NoopDataplane

#: name -> class. Add a data plane here, nowhere else.
DATAPLANES: dict[str, type[Dataplane]] = {
    "noop": NoopDataplane,
    "linuxbridge": LinuxBridgeDataplane,
}

REQUIRED_TOOLS = ("ip", "nft", "dnsmasq", "bridge")


def missing_tools() -> list[str]:
    """What stops ``linuxbridge`` here (empty when it can run)."""
    missing = [tool for tool in REQUIRED_TOOLS if shutil.which(tool) is None]
    if os.geteuid() != 0:
        missing.insert(0, "root")
    return missing


__all__ = ["DATAPLANES", "ApplyReport", "Dataplane", "LinuxBridgeDataplane",
           "LinuxBridgeOptions", "NoopDataplane", "is_compute_port", "missing_tools"]
