"""The one way to run blocking work (hashing, qemu-img, file I/O) off the event loop."""

from __future__ import annotations

import asyncio
import functools
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
