"""The one way to run blocking work (hashing, qemu-img, file I/O) off the event loop."""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

_executor: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    global _executor
    if _executor is None:
        _executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="stackling-blocking")
    return _executor


async def run_blocking(func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run ``func`` in a worker thread. CPU-heavy C code that drops the GIL (bcrypt,
    hashlib on large buffers) runs truly in parallel there."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_pool(), functools.partial(func, *args, **kwargs))


_cpu_executor: ThreadPoolExecutor | None = None


def _cpu_pool() -> ThreadPoolExecutor:
    global _cpu_executor
    if _cpu_executor is None:
        workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
            os.cpu_count() or 1)
        _cpu_executor = ThreadPoolExecutor(max_workers=workers,
                                           thread_name_prefix="stackling-cpu")
    return _cpu_executor


async def run_cpu_bound(func: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Like :func:`run_blocking`, for work that keeps a core busy while it runs (bcrypt):
    at most one thread per core, so a burst of logins queues instead of time-slicing the
    cores between many half-done hashes (same throughput, lower latency for the first ones,
    and the event loop keeps its share of the CPU)."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(_cpu_pool(), functools.partial(func, *args, **kwargs))
