"""Single-flight calls with short failure caching: one lookup per key at a time, shared.

A registry that hangs or fails must not be asked once per waiting request: concurrent callers of
one key wait for the leader's call and share its answer or its failure, and a failure is
remembered for `negative_seconds` so a burst during an outage is refused at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")


class SingleFlight:
    """`do(key, fn)`: run fn once for all concurrent callers of key; failures cached briefly."""

    def __init__(
        self,
        negative_seconds: float = 5.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        copy_error: Callable[[BaseException], BaseException] | None = None,
    ) -> None:
        self.negative_seconds = negative_seconds
        self._clock = clock
        self._copy = copy_error or (lambda exc: exc)
        self._lock = threading.Lock()
        self._inflight: dict[Hashable, Future[Any]] = {}
        self._failed: dict[Hashable, tuple[float, BaseException]] = {}
        self.calls = 0  # how many times a fn really ran (tests and /readyz read it)

    def do(self, key: Hashable, fn: Callable[[], T]) -> T:
        with self._lock:
            failed = self._failed.get(key)
            if failed is not None:
                if failed[0] > self._clock():
                    raise self._copy(failed[1])
                del self._failed[key]
            future = self._inflight.get(key)
            leader = future is None
            if leader:
                future = self._inflight[key] = Future()
                self.calls += 1
        assert future is not None
        if not leader:
            try:
                return future.result()
            except BaseException as exc:  # each waiter raises its own copy
                raise self._copy(exc) from None
        try:
            value = fn()
        except BaseException as exc:
            with self._lock:
                if self.negative_seconds > 0:
                    self._failed[key] = (self._clock() + self.negative_seconds, exc)
                self._inflight.pop(key, None)
            future.set_exception(exc)
            raise
        with self._lock:
            self._inflight.pop(key, None)
        future.set_result(value)
        return value

    def failing(self) -> dict[Hashable, str]:
        """Keys whose last call failed within negative_seconds, with the reason (for /readyz)."""
        now = self._clock()
        with self._lock:
            return {k: str(e) for k, (until, e) in self._failed.items() if until > now}

    def forget(self, key: Hashable | None = None) -> None:
        with self._lock:
            if key is None:
                self._failed.clear()
            else:
                self._failed.pop(key, None)
