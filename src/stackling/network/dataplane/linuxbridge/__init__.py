"""The Linux bridge data plane (see :mod:`.driver`)."""

from stackling.network.dataplane.linuxbridge.driver import LinuxBridgeDataplane, LinuxBridgeOptions

__all__ = ["LinuxBridgeDataplane", "LinuxBridgeOptions"]
