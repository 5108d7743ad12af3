from __future__ import annotations

import pytest

from stackling.compute import states


@pytest.mark.parametrize(("vm", "task", "status"), [
    ("active", None, "ACTIVE"), ("active", "rebooting", "REBOOT"),
    ("active", "rebooting_hard", "HARD_REBOOT"), ("active", "powering-off", "ACTIVE"),
    ("building", "spawning", "BUILD"), ("stopped", None, "SHUTOFF"),
    ("error", None, "ERROR"), ("resized", None, "VERIFY_RESIZE"), ("bogus", None, "UNKNOWN"),
])
def test_status_of(vm: str, task: str | None, status: str) -> None:
    assert states.status_of(vm, task) == status


def test_status_filters_select_exactly_the_rows_showing_that_status() -> None:
    tasks = [None, *(v for k, v in vars(states.Task).items() if k.isupper())]
    for status in ("ACTIVE", "REBOOT", "HARD_REBOOT", "SHUTOFF", "BUILD", "RESIZE", "ERROR"):
        matches = states.matches_for_status(status)
        for vm in states.VM_STATES:
            for task in tasks:
                selected = any(
                    m.vm_state == vm and (task in m.tasks if m.tasks is not None
                                          else task not in m.excluded) for m in matches)
                assert selected == (states.status_of(vm, task) == status), (status, vm, task)
    assert states.matches_for_status("NOPE") == []
    assert not states.known_status("NOPE") and states.known_status("shutoff")


def test_actions_table() -> None:
    stop = states.action("stop")
    assert stop.task == states.Task.POWERING_OFF and states.ACTIVE in stop.vm_states
    assert states.action("reboot").vm_states == {states.ACTIVE}
    assert states.STOPPED in states.action("reboot_hard").vm_states
    assert states.Task.DELETING in states.action("delete").task_states
