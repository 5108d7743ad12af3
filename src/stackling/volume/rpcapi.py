"""The volume RPC surface: what volume-api casts to the volume and backup workers.

Who talks to whom::

    volume-api --CreateVolume, DeleteVolume, ExtendVolume, CreateSnapshot, DeleteSnapshot
               (cast)--> "volume.<host>"   (the host the scheduler picked / the volume lives on)
    volume-api --InitializeConnection, TerminateConnection (call)--> "volume.<host>"
    volume-api --CreateBackup, RestoreBackup, DeleteBackup (cast)--> "volume.<host>"
                 (the backup work for a volume runs where its data is)

Messages carry ids; the volume and backup workers read the rows they act on (like
cinder-volume, they are database clients of the volume service, not hypervisor agents).
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from stackling.bus import Message, register


def volume_topic(host: str) -> str:
    """``host`` is the backend's host (``node@backend``, pool suffix dropped); topics allow
    no ``@``: ``volume.<node>.<backend>``."""
    node, _, backend = host.split("#", 1)[0].partition("@")
    return f"volume.{node}.{backend}" if backend else f"volume.{node}"


class _VolumeCast(Message):
    volume_id: str
    request_id: str = ""


@register
class CreateVolume(_VolumeCast):
    NAME: ClassVar[str] = "volume.manager.create_volume"
    VERSION: ClassVar[str] = "1.0"


@register
class DeleteVolume(_VolumeCast):
    """With ``cascade`` the worker first deletes the volume's snapshots (already marked
    ``deleting``), then the volume, so the snapshots are gone before the volume is."""

    NAME: ClassVar[str] = "volume.manager.delete_volume"
    VERSION: ClassVar[str] = "1.1"
    cascade: bool = False


@register
class ExtendVolume(_VolumeCast):
    NAME: ClassVar[str] = "volume.manager.extend_volume"
    VERSION: ClassVar[str] = "1.0"
    new_size: int


@register
class UploadToImage(_VolumeCast):
    NAME: ClassVar[str] = "volume.manager.upload_to_image"
    VERSION: ClassVar[str] = "1.0"
    image_id: str
    disk_format: str = "raw"


@register
class CreateSnapshot(Message):
    NAME: ClassVar[str] = "volume.manager.create_snapshot"
    VERSION: ClassVar[str] = "1.0"
    snapshot_id: str
    request_id: str = ""


@register
class DeleteSnapshot(Message):
    NAME: ClassVar[str] = "volume.manager.delete_snapshot"
    VERSION: ClassVar[str] = "1.0"
    snapshot_id: str
    request_id: str = ""


@register
class InitializeConnection(_VolumeCast):
    NAME: ClassVar[str] = "volume.manager.initialize_connection"
    VERSION: ClassVar[str] = "1.0"
    connector: dict[str, Any] = Field(default_factory=dict)


@register
class ConnectionInfo(Message):
    NAME: ClassVar[str] = "volume.manager.connection_info"
    VERSION: ClassVar[str] = "1.0"
    connection_info: dict[str, Any]


@register
class TerminateConnection(_VolumeCast):
    NAME: ClassVar[str] = "volume.manager.terminate_connection"
    VERSION: ClassVar[str] = "1.0"


@register
class CreateBackup(Message):
    NAME: ClassVar[str] = "volume.backup.create_backup"
    VERSION: ClassVar[str] = "1.0"
    backup_id: str
    request_id: str = ""


@register
class RestoreBackup(Message):
    NAME: ClassVar[str] = "volume.backup.restore_backup"
    VERSION: ClassVar[str] = "1.0"
    backup_id: str
    volume_id: str
    request_id: str = ""


@register
class DeleteBackup(Message):
    NAME: ClassVar[str] = "volume.backup.delete_backup"
    VERSION: ClassVar[str] = "1.0"
    backup_id: str
    request_id: str = ""
