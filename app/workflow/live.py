"""Per-process cache of live workflows, valid only for the version that was committed.

Loading an instance means reading ~8 KB of JSON and rebuilding the task tree; within a
process the same instance is often advanced again moments later (the in-process outbox
right after the request, the next task of the same application). An entry is published
only after the transaction that wrote that version commits, and is taken out of the
cache while a transaction works on it, so no two threads share a workflow object and a
rolled-back change is never served. A version mismatch simply means "load from the row".
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.orm import Session

_MAX_ENTRIES = 512
_lock = threading.Lock()
_entries: OrderedDict[int, tuple[int, Any]] = OrderedDict()
_PENDING = "ydx_live_pending"
T = TypeVar("T")


def take_any(instance_id: int) -> tuple[int, Any] | None:
    """Remove and return (version, workflow) of `instance_id` if cached, whatever its version."""
    with _lock:
        return _entries.pop(instance_id, None)


def read(instance_id: int, version: int, reader: Callable[[Any], T]) -> T | None:
    """Run `reader` on the cached workflow at `version` without taking it (under the lock)."""
    with _lock:
        entry = _entries.get(instance_id)
        if entry is None or entry[0] != version:
            return None
        return reader(entry[1])


def stage(session: Session, instance_id: int, version: int, workflow: Any) -> None:
    """Remember a workflow written in this transaction; it is published on commit."""
    session.info.setdefault(_PENDING, {})[instance_id] = (version, workflow)


def clear() -> None:
    """Forget everything (tests that rebuild the database reuse instance ids)."""
    with _lock:
        _entries.clear()


@event.listens_for(Session, "after_commit")
def _publish(session: Session) -> None:
    pending = session.info.pop(_PENDING, None)
    if not pending:
        return
    with _lock:
        for instance_id, entry in pending.items():
            _entries[instance_id] = entry
            _entries.move_to_end(instance_id)
        while len(_entries) > _MAX_ENTRIES:
            _entries.popitem(last=False)


@event.listens_for(Session, "after_soft_rollback")
def _discard(session: Session, _previous_transaction: Any) -> None:
    session.info.pop(_PENDING, None)
