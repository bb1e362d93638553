"""The heap of start-up: once the server is up, a full garbage collection must not walk the
tens of thousands of objects start-up made (it ran on the event loop for 20-35 ms, and every
request in flight waited for it)."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from modelshelf.app import freeze_start_up_heap


class Node:
    """An object in a reference cycle: only the collector frees it."""

    def __init__(self) -> None:
        self.itself = self


@pytest.fixture
def unfrozen() -> Iterator[None]:
    """Give the test process its heap back afterwards."""
    yield
    gc.unfreeze()


def tracked(obj: object) -> bool:
    """Whether a collection would walk `obj` (frozen objects are in no generation)."""
    return any(o is obj for o in gc.get_objects())


@pytest.mark.usefixtures("unfrozen")
def test_start_up_garbage_is_collected_and_what_lives_is_frozen() -> None:
    garbage = Node()
    collected = weakref.ref(garbage)
    del garbage
    alive = Node()
    assert tracked(alive)

    freeze_start_up_heap()

    assert collected() is None
    assert not tracked(alive)
    assert gc.get_freeze_count() > 0


@pytest.mark.usefixtures("unfrozen")
def test_objects_made_after_start_up_are_still_collected() -> None:
    freeze_start_up_heap()
    later = Node()
    collected = weakref.ref(later)
    del later
    gc.collect()
    assert collected() is None
