"""`Lazy`, how the engine holds its models: made once, on first use or in the background ahead of it, with a
failure in the background raised where the object is needed. Plain factories here; the engine's use of it with
the real generator is in `test_cold_start.py`."""

from __future__ import annotations

import threading

import pytest

from rag_engine.errors import ModelError
from rag_engine.seams import Lazy

WAIT_SECONDS = 30.0


class Recorder:
    """A factory that records each call's thread and can be held until released."""

    def __init__(self, failures: int = 0) -> None:
        self.threads: list[threading.Thread] = []
        self.failures = failures
        self.raised: list[ModelError] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        self.release.set()

    def __call__(self) -> object:
        self.threads.append(threading.current_thread())
        self.entered.set()
        assert self.release.wait(WAIT_SECONDS)
        if len(self.threads) <= self.failures:
            error = ModelError(f"cannot load GGUF model broken.gguf: attempt {len(self.threads)}")
            self.raised.append(error)
            raise error
        return object()


def test_first_call_makes_the_object_once_in_the_calling_thread() -> None:
    factory = Recorder()
    lazy = Lazy(factory)
    made = lazy()
    assert lazy() is made and factory.threads == [threading.current_thread()]


def test_start_makes_it_in_the_background_and_the_call_waits_for_that() -> None:
    factory = Recorder()
    factory.release.clear()
    lazy = Lazy(factory)
    lazy.start()
    assert factory.entered.wait(WAIT_SECONDS)  # the factory runs while this thread goes on
    lazy.start()  # already being made: no second thread
    factory.release.set()
    made = lazy()
    assert lazy() is made
    assert len(factory.threads) == 1 and factory.threads[0] is not threading.current_thread()


def test_start_after_the_object_is_made_does_nothing() -> None:
    factory = Recorder()
    lazy = Lazy(factory)
    made = lazy()
    lazy.start()
    assert lazy() is made and len(factory.threads) == 1


def test_a_failure_in_the_background_is_raised_by_the_call_that_needs_it_then_retried() -> None:
    factory = Recorder(failures=1)
    lazy = Lazy(factory)
    lazy.start()
    with pytest.raises(ModelError, match="attempt 1") as raised:
        lazy()
    assert raised.value is factory.raised[0]  # the factory's own error, not a wrapper or a second attempt's
    assert len(factory.threads) == 1 and factory.threads[0] is not threading.current_thread()
    made = lazy()  # a factory that failed is asked again
    assert lazy() is made and factory.threads[1] is threading.current_thread()


def test_a_failure_waits_for_the_next_start_to_be_retried_in_the_background() -> None:
    factory = Recorder(failures=2)
    lazy = Lazy(factory)
    lazy.start()
    with pytest.raises(ModelError, match="attempt 1"):
        lazy()
    lazy.start()
    with pytest.raises(ModelError, match="attempt 2"):
        lazy()
    assert all(thread is not threading.current_thread() for thread in factory.threads)
    assert lazy() is lazy()


def test_loading_waits_for_the_background_creation_and_keeps_its_failure() -> None:
    factory = Recorder(failures=1)
    factory.release.clear()
    finished: list[object] = []
    lazy = Lazy(factory)
    with lazy.loading():
        assert factory.entered.wait(WAIT_SECONDS)
        factory.release.set()
    finished.extend(factory.raised)  # read right after the block: the factory has ended by now
    assert len(finished) == 1 and len(factory.threads) == 1
    with pytest.raises(ModelError, match="attempt 1"):
        lazy()
