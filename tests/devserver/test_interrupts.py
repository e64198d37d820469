"""devserver.interrupts: a stop is never lost, even when its exception is."""

from __future__ import annotations

import contextlib
import signal
import time

import pytest

from devserver.interrupts import Interrupts, Stopped
from tests.support import frame_in


def test_a_stop_whose_exception_was_swallowed_is_raised_by_check():
    interrupts = Interrupts()
    interrupts.check()  # nothing came: nothing raised
    # What Python does with an exception raised inside a weakref callback or a __del__.
    with contextlib.suppress(Stopped):
        interrupts._handle(signal.SIGTERM, None)
    with pytest.raises(Stopped) as caught:
        interrupts.check()
    assert caught.value.name == "SIGTERM"


def test_a_stop_inside_shielded_waits_for_the_end_of_the_block():
    interrupts = Interrupts()
    with pytest.raises(Stopped), interrupts.shielded():
        interrupts._handle(signal.SIGINT, None)  # held: no exception here
        interrupts.check()  # nor here
        reached = True
    assert reached


def test_the_destroy_path_is_not_interrupted():
    interrupts = Interrupts()
    with interrupts.shielded(raise_pending=False):
        interrupts._handle(signal.SIGINT, None)
    assert interrupts.received == signal.SIGINT


def test_a_stop_in_the_import_machinery_is_raised_again_outside_it():
    # There Python would only print the exception ("Exception ignored in ... cb"): the handler
    # does not raise, and the signal comes again a moment later, outside.
    interrupts = Interrupts().install()
    try:
        interrupts._handle(signal.SIGTERM, frame_in("<frozen importlib._bootstrap>", "cb"))
        with pytest.raises(Stopped) as caught:
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                time.sleep(0.005)
        assert caught.value.name == "SIGTERM"
    finally:
        interrupts.restore()
