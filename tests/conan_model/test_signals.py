"""`conan_model.signals`: an interrupt whose exception a finalizer swallowed is raised again where a wait asks."""

from __future__ import annotations

import os
import signal
import sys

import pytest

from conan_model.signals import Terminated, raise_if_interrupted, sigterm_interrupts


class SignalsItselfWhenCollected:
    def __del__(self) -> None:
        os.kill(os.getpid(), signal.SIGTERM)
        sum(range(1000))  # the handler runs here, inside the finalizer, where CPython drops its exception


def test_an_interrupt_a_finalizer_swallowed_is_raised_again_by_a_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    """CPython runs a signal handler wherever the main thread is; inside `__del__` its Terminated is printed as
    "Exception ignored" and lost, and the signals are ignored from then on. A wait that calls
    `raise_if_interrupted` (harness.distributed's polls) still stops; outside the block nothing is pending."""
    dropped = []
    monkeypatch.setattr(sys, "unraisablehook", lambda unraisable: dropped.append(unraisable.exc_type))
    with pytest.raises(Terminated):
        with sigterm_interrupts():
            obj = SignalsItselfWhenCollected()
            del obj  # the handler fired and its exception is gone
            assert signal.getsignal(signal.SIGTERM) is signal.SIG_IGN
            raise_if_interrupted()
    assert dropped == [Terminated]  # what CPython reports as "Exception ignored in ... __del__"
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the block's handlers are undone
    raise_if_interrupted()  # nothing pending after the block
