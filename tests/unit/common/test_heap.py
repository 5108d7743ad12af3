import gc

from stackling.common import heap


def test_settle_freezes_the_startup_heap_and_raises_the_thresholds() -> None:
    before = gc.get_threshold()
    try:
        survivor = [object()]  # something alive at startup
        heap.settle()
        assert gc.get_freeze_count() > 0
        assert gc.is_tracked(survivor)
        assert gc.get_threshold() == heap.THRESHOLDS
        # cycles made after startup are still collected
        cycle: list[object] = []
        cycle.append(cycle)
        del cycle
        assert gc.collect() >= 1
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
