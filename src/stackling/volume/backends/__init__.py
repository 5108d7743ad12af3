"""Volume backends, selected from an explicit table by ``volume.backend``."""

from __future__ import annotations

from collections.abc import Callable

from stackling.common.config import Config
from stackling.volume.backends.base import (
    Backend,
    BackendError,
    BackendFull,
    Capacity,
    NotFoundInBackend,
)
from stackling.volume.backends.file import FileBackend
from stackling.volume.backends.memory import MemoryBackend
from stackling.volume.backends.nbd import NbdBackend

__all__ = ["BACKENDS", "Backend", "BackendError", "BackendFull", "Capacity", "FileBackend",
           "MemoryBackend", "NbdBackend", "NotFoundInBackend", "create_backend"]


def _file(config: Config) -> Backend:
    conf = config.volume
    return FileBackend(conf.backend_name, conf.pool_dir or config.data_dir / "volumes",
                       conf.volume_format, conf.capacity_gb, conf.max_over_subscription_ratio,
                       conf.reserved_percentage)


def _nbd(config: Config) -> Backend:
    conf = config.volume
    return NbdBackend(conf.backend_name, conf.pool_dir or config.data_dir / "volumes",
                      conf.volume_format, host=conf.nbd_host, port_min=conf.nbd_port_min,
                      port_max=conf.nbd_port_max, capacity_gb=conf.capacity_gb,
                      max_over_subscription_ratio=conf.max_over_subscription_ratio,
                      reserved_percentage=conf.reserved_percentage)


def _memory(config: Config) -> Backend:
    conf = config.volume
    return MemoryBackend(conf.backend_name, conf.capacity_gb or 1000,
                         conf.max_over_subscription_ratio)


BACKENDS: dict[str, Callable[[Config], Backend]] = {
    "file": _file, "nbd": _nbd, "memory": _memory}


def create_backend(config: Config) -> Backend:
    return BACKENDS[config.volume.backend](config)
