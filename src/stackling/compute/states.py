"""Server states, as Nova names them, and which actions each state allows.

Three independent fields describe a server:

- ``vm_state``: what the server *is* (stable, user visible);
- ``task_state``: what is being *done* to it right now (``None`` when idle);
- ``power_state``: what the hypervisor last reported (an integer, Nova's numbering).

The API shows ``status``, derived from vm_state + task_state (:func:`status_of`).
Every change of ``task_state`` is a compare-and-swap in the database (see
:mod:`stackling.compute.service.instances`): an action is only started when the row still holds
the states :data:`ACTIONS` allows, so of two concurrent actions exactly one wins.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

# -- vm_state -------------------------------------------------------------------------------
ACTIVE: Final = "active"
BUILDING: Final = "building"
PAUSED: Final = "paused"
SUSPENDED: Final = "suspended"
STOPPED: Final = "stopped"
RESCUED: Final = "rescued"
RESIZED: Final = "resized"
SOFT_DELETED: Final = "soft-delete"
DELETED: Final = "deleted"
ERROR: Final = "error"
SHELVED: Final = "shelved"
SHELVED_OFFLOADED: Final = "shelved_offloaded"

VM_STATES: Final = frozenset({ACTIVE, BUILDING, PAUSED, SUSPENDED, STOPPED, RESCUED, RESIZED,
                              SOFT_DELETED, DELETED, ERROR, SHELVED, SHELVED_OFFLOADED})


class Task:
    """task_state values."""

    SCHEDULING: Final = "scheduling"
    BLOCK_DEVICE_MAPPING: Final = "block_device_mapping"
    NETWORKING: Final = "networking"
    SPAWNING: Final = "spawning"
    IMAGE_SNAPSHOT: Final = "image_snapshot"
    IMAGE_SNAPSHOT_PENDING: Final = "image_snapshot_pending"
    IMAGE_PENDING_UPLOAD: Final = "image_pending_upload"
    IMAGE_UPLOADING: Final = "image_uploading"
    UPDATING_PASSWORD: Final = "updating_password"  # noqa: S105 - a state name
    RESIZE_PREP: Final = "resize_prep"
    RESIZE_MIGRATING: Final = "resize_migrating"
    RESIZE_MIGRATED: Final = "resize_migrated"
    RESIZE_FINISH: Final = "resize_finish"
    RESIZE_REVERTING: Final = "resize_reverting"
    RESIZE_CONFIRMING: Final = "resize_confirming"
    REBOOTING: Final = "rebooting"
    REBOOT_PENDING: Final = "reboot_pending"
    REBOOT_STARTED: Final = "reboot_started"
    REBOOTING_HARD: Final = "rebooting_hard"
    REBOOT_PENDING_HARD: Final = "reboot_pending_hard"
    REBOOT_STARTED_HARD: Final = "reboot_started_hard"
    PAUSING: Final = "pausing"
    UNPAUSING: Final = "unpausing"
    SUSPENDING: Final = "suspending"
    RESUMING: Final = "resuming"
    POWERING_OFF: Final = "powering-off"
    POWERING_ON: Final = "powering-on"
    REBUILDING: Final = "rebuilding"
    REBUILD_SPAWNING: Final = "rebuild_spawning"
    DELETING: Final = "deleting"
    RESCUING: Final = "rescuing"
    UNRESCUING: Final = "unrescuing"
    SHELVING: Final = "shelving"
    UNSHELVING: Final = "unshelving"
    MIGRATING: Final = "migrating"


# -- power_state (Nova's integers) ----------------------------------------------------------
NOSTATE: Final = 0
RUNNING: Final = 1
POWER_PAUSED: Final = 3
SHUTDOWN: Final = 4
CRASHED: Final = 6
POWER_SUSPENDED: Final = 7

# -- status: vm_state (+ task_state) -> API status --------------------------------------------
_STATUS: Final[dict[str, dict[str | None, str]]] = {
    ACTIVE: {"default": "ACTIVE", Task.REBOOTING: "REBOOT", Task.REBOOT_PENDING: "REBOOT",
             Task.REBOOT_STARTED: "REBOOT", Task.REBOOTING_HARD: "HARD_REBOOT",
             Task.REBOOT_PENDING_HARD: "HARD_REBOOT", Task.REBOOT_STARTED_HARD: "HARD_REBOOT",
             Task.UPDATING_PASSWORD: "PASSWORD", Task.REBUILDING: "REBUILD",
             Task.REBUILD_SPAWNING: "REBUILD", Task.MIGRATING: "MIGRATING",
             Task.RESIZE_PREP: "RESIZE", Task.RESIZE_MIGRATING: "RESIZE",
             Task.RESIZE_MIGRATED: "RESIZE", Task.RESIZE_FINISH: "RESIZE"},
    BUILDING: {"default": "BUILD"},
    STOPPED: {"default": "SHUTOFF", Task.RESIZE_PREP: "RESIZE",
              Task.RESIZE_MIGRATING: "RESIZE", Task.RESIZE_MIGRATED: "RESIZE",
              Task.RESIZE_FINISH: "RESIZE", Task.REBUILDING: "REBUILD",
              Task.REBUILD_SPAWNING: "REBUILD"},
    RESIZED: {"default": "VERIFY_RESIZE", Task.RESIZE_REVERTING: "REVERT_RESIZE"},
    PAUSED: {"default": "PAUSED", Task.MIGRATING: "MIGRATING"},
    SUSPENDED: {"default": "SUSPENDED"},
    RESCUED: {"default": "RESCUE"},
    ERROR: {"default": "ERROR", Task.REBUILDING: "REBUILD",
            Task.REBUILD_SPAWNING: "REBUILD"},
    DELETED: {"default": "DELETED"},
    SOFT_DELETED: {"default": "SOFT_DELETED"},
    SHELVED: {"default": "SHELVED"},
    SHELVED_OFFLOADED: {"default": "SHELVED_OFFLOADED"},
}


def status_of(vm_state: str, task_state: str | None) -> str:
    """The API ``status`` of a server (Nova's ``status_from_state``)."""
    by_task = _STATUS.get(vm_state)
    if by_task is None:
        return "UNKNOWN"
    return by_task.get(task_state, by_task["default"])


@dataclass(frozen=True)
class StatusMatch:
    """Rows showing a status: ``vm_state`` with ``task_state`` in ``tasks`` (when given), or
    any task_state not in ``excluded`` (NULL included) when ``tasks`` is None."""

    vm_state: str
    tasks: tuple[str, ...] | None
    excluded: tuple[str, ...] = ()


def matches_for_status(status: str) -> list[StatusMatch]:
    """What a ``status`` list filter selects (empty for an unknown status)."""
    status = status.upper()
    out: list[StatusMatch] = []
    for vm_state, by_task in _STATUS.items():
        special = {t: s for t, s in by_task.items() if t != "default" and t is not None}
        if by_task["default"] == status:
            out.append(StatusMatch(vm_state, None,
                                   tuple(t for t, s in special.items() if s != status)))
        else:
            tasks = tuple(t for t, s in special.items() if s == status)
            if tasks:
                out.append(StatusMatch(vm_state, tasks))
    return out


def known_status(status: str) -> bool:
    status = status.upper()
    return any(status in by_task.values() for by_task in _STATUS.values())


# -- actions --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Action:
    """An action the API may start: it needs the server in one of ``vm_states`` with
    ``task_state`` in ``task_states``; starting it sets ``task_state`` to ``task``."""

    name: str  # the API's name for the action, used in 409 messages ("stop")
    vm_states: frozenset[str]
    task: str | None
    task_states: frozenset[str | None] = frozenset({None})


_ANY_STABLE = frozenset({ACTIVE, BUILDING, PAUSED, SUSPENDED, STOPPED, RESCUED, RESIZED,
                         SOFT_DELETED, ERROR, SHELVED, SHELVED_OFFLOADED})

ACTIONS: Final[dict[str, Action]] = {a.name: a for a in (
    Action("stop", frozenset({ACTIVE, ERROR, RESCUED}), Task.POWERING_OFF),
    Action("start", frozenset({STOPPED}), Task.POWERING_ON),
    Action("reboot", frozenset({ACTIVE}), Task.REBOOTING),
    Action("reboot_hard", frozenset({ACTIVE, STOPPED, PAUSED, SUSPENDED, ERROR}),
           Task.REBOOTING_HARD,
           frozenset({None, Task.REBOOTING, Task.REBOOT_PENDING, Task.REBOOT_STARTED,
                      Task.REBOOTING_HARD, Task.RESUMING, Task.UNPAUSING, Task.PAUSING,
                      Task.SUSPENDING})),
    Action("pause", frozenset({ACTIVE}), Task.PAUSING),
    Action("unpause", frozenset({PAUSED}), Task.UNPAUSING),
    Action("suspend", frozenset({ACTIVE}), Task.SUSPENDING),
    Action("resume", frozenset({SUSPENDED}), Task.RESUMING),
    # delete is allowed in any state, and again while already deleting
    Action("delete", _ANY_STABLE, Task.DELETING,
           frozenset({None, *(v for k, v in vars(Task).items() if k.isupper())})),
)}


def action(name: str) -> Action:
    return ACTIONS[name]
