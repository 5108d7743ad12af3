"""Where one VM's files live, and the launch spec that lets any agent start it again.

``<data_dir>/instances/<uuid>/``: ``disk.qcow2`` (overlay on a cached base image),
``console.log`` (the serial console), ``qmp.sock``, ``serial.sock``, ``vnc.sock``, ``pid``,
``stderr.log``, ``config.iso``, ``launch.json`` (the :class:`LaunchSpec`), ``state.bin``
(a suspended guest's memory) and ``intent`` (why the process ended: ``stopped``).
A resize keeps the old directory as ``<uuid>_resize`` until it is confirmed or reverted.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class LaunchSpec:
    """Everything the QEMU command line is made from (saved as ``launch.json``)."""

    uuid: str
    name: str
    vcpus: int
    memory_mb: int
    disk: str
    kernel: str | None = None
    initrd: str | None = None
    cmdline: str | None = None
    config_drive: str | None = None
    machine: str = "pc"
    accel: str = "tcg"
    vnc: bool = True
    video: str = "std"  # QEMU's -vga model (the image's hw_video_model)
    nics: list[dict[str, str]] = field(default_factory=list)  # {"tap": ..., "mac": ...}
    image_id: str = ""
    root_volume: dict[str, Any] | None = None  # boot from volume: its blockdev node
    # volumes plugged since (``{"volume_id", "connection"}``): a restarted VM keeps them
    volumes: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> LaunchSpec:
        data: dict[str, Any] = json.loads(text)
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


class InstanceFiles:
    def __init__(self, root: Path, uuid: str, suffix: str = "") -> None:
        self.uuid = uuid
        self.dir = root / f"{uuid}{suffix}"

    @property
    def disk(self) -> Path:
        return self.dir / "disk.qcow2"

    @property
    def console_log(self) -> Path:
        return self.dir / "console.log"

    @property
    def qmp(self) -> Path:
        return self.dir / "qmp.sock"

    @property
    def serial(self) -> Path:
        return self.dir / "serial.sock"

    @property
    def vnc(self) -> Path:
        return self.dir / "vnc.sock"

    @property
    def pidfile(self) -> Path:
        return self.dir / "pid"

    @property
    def stderr(self) -> Path:
        return self.dir / "stderr.log"

    @property
    def config_drive(self) -> Path:
        return self.dir / "config.iso"

    @property
    def launch(self) -> Path:
        return self.dir / "launch.json"

    @property
    def state(self) -> Path:
        return self.dir / "state.bin"

    @property
    def intent(self) -> Path:
        return self.dir / "intent"

    def exists(self) -> bool:
        return self.launch.exists()

    def read_spec(self) -> LaunchSpec:
        return LaunchSpec.from_json(self.launch.read_text())

    def write_spec(self, spec: LaunchSpec) -> None:
        tmp = self.launch.with_suffix(".tmp")
        tmp.write_text(spec.to_json())
        os.replace(tmp, self.launch)

    def set_intent(self, intent: str | None) -> None:
        if intent is None:
            self.intent.unlink(missing_ok=True)
        else:
            self.intent.write_text(intent)

    def get_intent(self) -> str | None:
        try:
            return self.intent.read_text().strip() or None
        except FileNotFoundError:
            return None

    def console_tail(self, limit: int = 1 << 20) -> str:
        """The end of the serial console log (at most ``limit`` bytes)."""
        try:
            with self.console_log.open("rb") as fh:
                size = fh.seek(0, os.SEEK_END)
                fh.seek(max(0, size - limit))
                return fh.read().decode("utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def trim_console(self, keep: int = 512 * 1024, above: int = 2 * 1024 * 1024) -> None:
        """Keep the log's last ``keep`` bytes once it grew past ``above`` (called before
        each start: QEMU appends to it and nothing else bounds it)."""
        try:
            if self.console_log.stat().st_size <= above:
                return
            with self.console_log.open("rb") as fh:
                fh.seek(-keep, os.SEEK_END)
                tail = fh.read()
        except OSError:
            return
        tmp = self.console_log.with_suffix(".trim")
        tmp.write_bytes(tail)
        os.replace(tmp, self.console_log)

    def stderr_tail(self, limit: int = 2000) -> str:
        try:
            text = self.stderr.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return text[-limit:].strip()


def tap_name(port_id: str) -> str:
    """The VM's tap for a port: ``tap`` + the port id's first 11 characters (the network
    RPC contract, ``stackling.network.rpcapi.tap_name``; compute may not import it)."""
    return ("tap" + port_id)[:14]
