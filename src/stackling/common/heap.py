"""The garbage collector of a long-running server process, settled once it has started.

A started cloud holds a large, long-lived heap (a thousand simulated hosts' state, models,
policy rules, routes). CPython's cyclic collector traverses all of it on every full
collection and its young collections run every 700 allocations, which on a boot+delete
loop measured about 6 % of the process's CPU (``py-spy --native``: ``gc_collect_main``).
:func:`settle` collects once, moves what survived startup out of the collector's sight
(``gc.freeze``: still freed by reference counting, never scanned again) and lets the young
generation grow larger before it is collected. Reference cycles made after startup are
still collected.
"""

from __future__ import annotations

import gc

#: young generation size before a collection (CPython's default: 700), then how many young
#: and middle collections before the next older one
THRESHOLDS = (20_000, 50, 100)


def settle() -> None:
    """Call once, after startup and before serving."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
