"""Work a new dataset version needs before the first query, done off the request path.

After a load, the first query over several datasets would pay the RDF-merge pair checks
(node.store.merge) and the first catalog or VoID request the statistics (node.void): seconds
per 100k triples, enough to run into the query timeout. A watcher thread does both as soon
as the store's version changes, so callers find them cached.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

__all__ = ["Warmer", "warm_up"]

log = logging.getLogger("dsgo.node")


def warm_up(rt: Any) -> None:
    """Plan the merge of every dataset (the owner's default graph) and the owner's VoID numbers."""
    from node.void import visible

    version = rt.store.version()
    graphs = rt.enforcer.dataset_graphs(rt.store, version)
    if len(graphs) > 1:
        rt.enforcer.merges.default_graphs(rt.store, graphs)
    visible(rt, rt.settings.party_id)


class Warmer:
    """A daemon thread that calls `warm_up` once for each new store version."""

    def __init__(self, rt: Any, interval: float = 2.0) -> None:
        self.rt, self.interval = rt, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dsgo-warm-up", daemon=True)
        self.warmed: Any = None  # the last store version warmed

    def start(self) -> Warmer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.is_set() and not self.rt.closed.is_set():
            try:
                version = self.rt.store.version()
                if version != self.warmed:
                    warm_up(self.rt)
                    self.warmed = version
            except Exception as exc:  # noqa: BLE001 - a cache miss is not worth a dead thread
                if not self.rt.closed.is_set():
                    log.warning("warm-up after a new dataset version failed: %s", exc)
            self._stop.wait(self.interval)
