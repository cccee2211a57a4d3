"""Bounds on a dependency that may hang: a circuit breaker and a deadline on a blocking socket.

A database whose processes are stopped (SIGSTOP, a frozen VM) still has a kernel that accepts
and acknowledges TCP: keepalives and `statement_timeout` never fire, and a blocked client waits
forever. So the client bounds every call itself: `socket_deadline` shuts the socket down when
the call overruns (the blocked read then fails at once), and a `Breaker` answers "unavailable"
without touching the dependency for a short cool-down after a failure, so a hung database costs
one deadline per cool-down instead of one per request.

A server that restarts closes every idle session it had; `idle_socket_closed` notices that
before a pooled connection is handed out, so the first calls after a restart do not fail.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass


class BreakerOpen(Exception):
    """The dependency failed a moment ago; retry after `retry_after` seconds."""

    def __init__(self, name: str, retry_after: float, reason: str) -> None:
        self.name, self.retry_after, self.reason = name, retry_after, reason
        super().__init__(f"{name} unavailable ({reason}); retry in {retry_after:.1f} s")


@dataclass
class BreakerState:
    """What /readyz reports about a dependency."""

    ok: bool
    reason: str | None
    retry_after: float


class Breaker:
    """Closed while calls succeed; after a failure open for `cool_down` s, then one probe passes."""

    def __init__(
        self, name: str, cool_down: float = 1.0, clock: Callable[[], float] = time.monotonic
    ):
        self.name = name
        self.cool_down = cool_down
        self._clock = clock
        self._lock = threading.Lock()
        self._open_until = 0.0
        self._reason: str | None = None
        self._probing = False

    def before(self) -> None:
        """Raise BreakerOpen while open (and while another caller probes); otherwise pass."""
        with self._lock:
            if self._reason is None:
                return
            now = self._clock()
            if now < self._open_until or self._probing:
                raise BreakerOpen(self.name, max(self._open_until - now, 0.1), self._reason)
            self._probing = True  # this caller is the probe

    def succeeded(self) -> None:
        with self._lock:
            self._reason, self._probing = None, False

    def failed(self, reason: str) -> None:
        with self._lock:
            self._reason = reason
            self._probing = False
            self._open_until = self._clock() + self.cool_down

    def state(self) -> BreakerState:
        with self._lock:
            left = max(self._open_until - self._clock(), 0.0)
            return BreakerState(self._reason is None, self._reason, left)


@contextlib.contextmanager
def socket_deadline(fileno: int | None, seconds: float) -> Iterator[threading.Event]:
    """Shut the socket `fileno` down if the block is still running after `seconds`.

    The yielded event is set when the deadline fired (the caller then reports a timeout, not a
    broken connection). The socket is only shut down, never closed: the owner closes it.
    """
    fired = threading.Event()
    done = threading.Lock()
    finished = [False]

    def expire() -> None:
        with done:
            if finished[0] or fileno is None or fileno < 0:
                return
            fired.set()
            try:
                dup = socket.socket(fileno=_dup(fileno))
            except OSError:
                return
            try:
                dup.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            finally:
                dup.close()

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()
    try:
        yield fired
    finally:
        with done:
            finished[0] = True
        timer.cancel()


def _dup(fileno: int) -> int:
    import os

    return os.dup(fileno)


def idle_socket_closed(fileno: int | None) -> bool:
    """True when an idle client socket has something to read: the server ended the session.

    An idle PostgreSQL session receives nothing unless the server closes it (a FATAL message,
    then EOF), so a readable socket means "do not reuse". A false alarm (an unsolicited status
    message) only costs one reconnect. One poll, no round trip.
    """
    if fileno is None or fileno < 0:
        return True
    poller = select.poll()
    poller.register(fileno, select.POLLIN | select.POLLPRI)
    return bool(poller.poll(0))
