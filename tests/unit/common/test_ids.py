"""Identifiers drawn from the pooled random bytes."""

from __future__ import annotations

import os
import re
import threading
import uuid

from stackling.common import ids


def test_formats_are_version_4_uuids() -> None:
    dashed = ids.new_uuid()
    assert str(uuid.UUID(dashed)) == dashed
    assert uuid.UUID(dashed).version == 4
    assert uuid.UUID(dashed).variant == uuid.RFC_4122
    plain = ids.new_id()
    assert re.fullmatch(r"[0-9a-f]{32}", plain)
    assert uuid.UUID(hex=plain).version == 4
    rid = ids.new_request_id()
    assert rid.startswith("req-") and uuid.UUID(rid[4:]).version == 4


def test_ids_do_not_repeat_across_pool_refills_and_threads() -> None:
    seen: list[str] = []
    lock = threading.Lock()

    def make() -> None:
        mine = [ids.new_id() for _ in range(2000)]  # 32 KB of pool: several refills
        with lock:
            seen.extend(mine)

    threads = [threading.Thread(target=make) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen) == 8000 == len(set(seen))


def test_a_forked_child_does_not_reuse_the_parents_pool() -> None:
    ids.new_id()  # the parent's pool now holds unused bytes
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report its next id and leave at once
        os.write(write, ids.new_id().encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 64).decode()
    os.close(read)
    os.waitpid(pid, 0)
    assert child and child != ids.new_id()


def test_random_bytes_length() -> None:
    assert len(ids.random_bytes(16)) == 16
    assert len(ids.random_bytes(5000)) == 5000
