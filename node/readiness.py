"""GET /readyz: may a load balancer send this host traffic? Each dependency, checked and bounded.

`/healthz` says the process lives; `/readyz` says whether it can serve: the store answers, the
audit log can be written (without it every audited request is refused), the participant
registry answers (tokens and outbound calls need it) and the disk has `node.min_free_mb` free.
Each check runs off the event loop with its own deadline; a check still stuck from an earlier
probe is reported as failing rather than started twice, so probes never pile up threads.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from node.disk import disk_space
from node.runtime import Runtime

CHECK_SECONDS = 2.0


@dataclass(frozen=True)
class Check:
    """One dependency's state as /readyz reports it."""

    ok: bool
    detail: str
    elapsed_ms: float


class Readiness:
    """Runs the checks; one pool thread per dependency at most."""

    def __init__(self, rt: Runtime, deadline: float = CHECK_SECONDS) -> None:
        self.rt = rt
        self.deadline = deadline
        self._pool = ThreadPoolExecutor(4, thread_name_prefix="readyz")
        self._running: dict[str, Future[str]] = {}
        self.checks: dict[str, Callable[[], str]] = {
            "store": self._store,
            "audit": self._audit,
            "registry": self._registry,
            "disk": self._disk,
        }

    async def report(self) -> tuple[bool, dict[str, Check]]:
        names = list(self.checks)
        results = await asyncio.gather(*(self._run(n) for n in names))
        out = dict(zip(names, results, strict=True))
        return all(c.ok for c in out.values()), out

    async def _run(self, name: str) -> Check:
        started = time.monotonic()
        future = self._running.get(name)
        if future is not None and not future.done():
            return Check(False, "the previous check has not returned yet", 0.0)
        future = self._running[name] = self._pool.submit(self.checks[name])
        try:
            detail = await asyncio.wait_for(asyncio.wrap_future(future), self.deadline)
            ok = True
        except TimeoutError:
            ok, detail = False, f"no answer within {self.deadline:g} s"
        except Exception as exc:  # noqa: BLE001 - every failure is a not-ready reason
            ok, detail = False, f"{type(exc).__name__}: {exc}"[:300]
        return Check(ok, detail, round((time.monotonic() - started) * 1000, 1))

    def _store(self) -> str:
        return f"{len(self.rt.store.datasets())} datasets"

    def _audit(self) -> str:
        store = self.rt.audit.store
        ping = getattr(store, "ping", None)
        if ping is not None:
            ping()
            return f"{type(store).__name__} answers"
        head = store.head()
        return f"{type(store).__name__} at entry {head.seq if head else 0}"

    def _registry(self) -> str:
        directory = self.rt.layer.directory
        if self.rt.registry is not None:
            return "this node is the registry"
        entries = directory.trusted_list()  # cached; a hung registry fails within its timeout
        failing: dict[str, str] = getattr(directory, "failing", dict)()
        if failing:
            raise RuntimeError(f"recent lookups failed: {sorted(failing)[:5]}")
        return f"trusted list of {len(entries)} CAs"

    def _disk(self) -> str:
        space = disk_space(self.rt.settings.data_dir, self.rt.settings.bounds.min_free_mb)
        if not space.ok:
            raise RuntimeError(
                f"{space.free_mb} MB free in {space.path}, below node.min_free_mb = "
                f"{space.min_free_mb}"
            )
        return f"{space.free_mb} MB free"

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def readiness_routes(rt: Runtime) -> tuple[list[Route], Readiness]:
    readiness = Readiness(rt)

    async def readyz(request: Request) -> Response:
        ready, checks = await readiness.report()
        body: dict[str, Any] = {
            "status": "ready" if ready else "not_ready",
            "checks": {name: asdict(c) for name, c in checks.items()},
        }
        headers = {"Cache-Control": "no-store"}
        if not ready:
            headers["Retry-After"] = str(rt.settings.bounds.retry_after)
        return Response(
            orjson.dumps(body),
            status_code=200 if ready else 503,
            media_type="application/json",
            headers=headers,
        )

    return [Route("/readyz", readyz, methods=["GET"])], readiness
