"""The owner's operations on a node, one interface for the CLI and the admin API.

`LocalNode` works on a runtime in this process: the admin routes call it for the caller they
authenticated, and the CLI calls it when no node holds the store. `RemoteNode` sends the same
operations to a running node's admin API, signed as the node's own party. Every operation is
decided by the enforcement point (`dsgo:admin`), locally as over HTTP, so both leave the same
admin record in the audit log.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from node.enforcement import ADMIN, Caller
from node.errors import NodeError
from vocab.iris import dataset_iri

__all__ = ["LocalNode", "NodeOps", "QueryOutput", "RemoteNode", "dataset_json"]


@dataclass(frozen=True)
class QueryOutput:
    """A query answer as the CLI prints it."""

    media: str
    body: bytes


class NodeOps(Protocol):
    """What an owner does to a node: data in and out, checks, signatures, queries."""

    def load(self, name: str, file: Path, fmt: Any, label: str) -> dict[str, Any]: ...

    def drop(self, name: str) -> None: ...

    def datasets(self) -> list[dict[str, Any]]: ...

    def connect(
        self, kind: str, source: str, dataset: str, mapping: Path | None, options: dict[str, str]
    ) -> dict[str, Any]: ...

    def sync(self, force: bool) -> list[dict[str, Any]]: ...

    def derive(self, query: str, dataset: str) -> dict[str, Any]: ...

    def sign(self, dataset: str) -> dict[str, Any]: ...

    def check(
        self, report: str, ids: list[str], dataset: str | None, model: str | None
    ) -> dict[str, Any]: ...

    def query(self, text: str, fmt: str | None) -> QueryOutput: ...

    def close(self) -> None: ...


def dataset_json(info: Any) -> dict[str, Any]:
    """The one JSON shape of a dataset record (admin API and CLI)."""
    return {
        "name": info.name,
        "graph": info.graph,
        "triples": info.triples,
        "modified": info.modified.isoformat() if info.modified else None,
    }


class LocalNode:
    """The operations on a runtime in this process, for `caller` (the node itself by default)."""

    def __init__(self, rt: Any, caller: Caller | None = None, *, run_sync: Any = None) -> None:
        self.rt = rt
        self.caller = caller or Caller.node(rt.settings.party_id)
        self._run_sync = run_sync
        self._loaded = False

    def _allow(self, target: str, operation: str) -> None:
        self.rt.enforcer.authorize(self.caller, ADMIN, target, operation=operation)

    def load(
        self, name: str, file: Path, fmt: Any, label: str, progress: Any = None
    ) -> dict[str, Any]:
        self._allow(name, "replace_dataset")
        info = self.rt.store.replace_dataset(name, file, fmt, label=label, progress=progress)
        self._loaded = True
        return {"dataset": info.name, "graph": info.graph, "triples": info.triples}

    def drop(self, name: str) -> None:
        self._allow(name, "drop_dataset")
        self.rt.store.drop_dataset(name)

    def datasets(self) -> list[dict[str, Any]]:
        self._allow("datasets", "list_datasets")
        return [dataset_json(d) for d in self.rt.store.datasets()]

    def connect(
        self, kind: str, source: str, dataset: str, mapping: Path | None, options: dict[str, str]
    ) -> dict[str, Any]:
        from node.sync import connect as run_connect

        self._allow(dataset, "connect")
        settings = self.rt.settings
        with tempfile.TemporaryDirectory(dir=settings.data_dir) as work:
            result, version = run_connect(
                self.rt.store,
                kind=kind,
                source=source,
                dataset=dataset,
                base_iri=settings.base_iri,
                party_id=settings.party_id,
                workdir=Path(work),
                mapping=mapping,
                options=options,
                severity=settings.shacl_severity,
            )
        self._loaded = True
        return {"dataset": dataset, "triples": result.triple_count, "version": version}

    def sync(self, force: bool) -> list[dict[str, Any]]:
        self._allow("sources", "sync")
        run = self._run_sync
        if run is None:
            if not self.rt.settings.sources:
                raise NodeError("no [[sources]] configured", status=404, code="no_sources")
            from node.sync import make_sync_runner

            run = make_sync_runner(self.rt)
        return run(force)

    def derive(self, query: str, dataset: str) -> dict[str, Any]:
        from node.derive import derive as run_derive

        self._allow(dataset, "derive")
        count, version = run_derive(self.rt, query, dataset)
        return {"dataset": dataset, "triples": count, "version": version}

    def sign(self, dataset: str) -> dict[str, Any]:
        from node.signatures import sign_stored_dataset

        self._allow(dataset, "sign_dataset")
        signed = sign_stored_dataset(
            self.rt.store, self.rt.identity, self.rt.settings.data_dir, dataset
        )
        return {
            "dataset": signed.dataset,
            "graph": signed.graph,
            "party": signed.party,
            "signed_at": signed.signed_at,
            "triples": signed.triples,
            "signature": dataset_iri(self.rt.settings.base_iri, dataset) + "/signature",
        }

    def check(
        self, report: str, ids: list[str], dataset: str | None, model: str | None
    ) -> dict[str, Any]:
        from node.checks import CheckError, run_check
        from node.iri import InvalidName

        self._allow(report, "check_ids")
        settings = self.rt.settings
        try:
            outcome = run_check(
                self.rt.store,
                self.rt.identity,
                settings.data_dir,
                base_iri=settings.base_iri,
                party_id=settings.party_id,
                report=report,
                ids=ids,
                dataset=dataset,
                model=model,
            )
        except InvalidName:
            raise
        except (OSError, ValueError) as exc:  # unreadable input the checker did not name
            raise CheckError(f"{type(exc).__name__}: {exc}", status=422) from None
        return outcome.to_json()

    def query(self, text: str, fmt: str | None) -> QueryOutput:
        """The SPARQL use case itself, as HTTP runs it, for this caller."""
        from node.service.query import SparqlRequest, answer_query

        deadline = time.monotonic() + self.rt.settings.query_timeout
        answer = answer_query(
            self.rt, self.caller, SparqlRequest(text, [], []), None, fmt, deadline, ()
        )
        return QueryOutput(answer.media, answer.body)

    def close(self) -> None:
        """Maintenance before the process exits (compaction after loads), then release."""
        if self._loaded:
            self.rt.store.compact()
        self.rt.close()


class RemoteNode:
    """The same operations on a running node, through its admin API, as the node's own party."""

    def __init__(self, client: Any, settings: Any) -> None:
        self.client = client
        self.settings = settings

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        resp = self.client.request(
            method,
            self.settings.base_iri,
            path,
            party_id=self.settings.party_id,
            timeout=kwargs.pop("timeout", None),
            **kwargs,
        )
        return resp

    def load(self, name: str, file: Path, fmt: Any, label: str) -> dict[str, Any]:
        with open(file, "rb") as fh:
            return _json_or_raise(
                self._call(
                    "PUT",
                    f"/admin/datasets/{name}",
                    content=fh,
                    headers={"Content-Type": fmt.media_type, "X-DSGO-Source": label},
                )
            )

    def drop(self, name: str) -> None:
        _json_or_raise(self._call("DELETE", f"/admin/datasets/{name}"))

    def datasets(self) -> list[dict[str, Any]]:
        return _json_or_raise(self._call("GET", "/admin/datasets"))["datasets"]

    def connect(
        self, kind: str, source: str, dataset: str, mapping: Path | None, options: dict[str, str]
    ) -> dict[str, Any]:
        body = {
            "kind": kind,
            "source": source,
            "dataset": dataset,
            "mapping": str(mapping.resolve()) if mapping else None,
            "options": options,
        }
        return _json_or_raise(self._call("POST", "/admin/connect", json=body))

    def sync(self, force: bool) -> list[dict[str, Any]]:
        resp = self._call("POST", "/admin/sync", params={"force": "true" if force else "false"})
        return _json_or_raise(resp)["outcomes"]

    def derive(self, query: str, dataset: str) -> dict[str, Any]:
        body = {"query": query, "dataset": dataset}
        return _json_or_raise(self._call("POST", "/admin/derive", json=body))

    def sign(self, dataset: str) -> dict[str, Any]:
        return _json_or_raise(self._call("POST", f"/admin/sign/{dataset}"))

    def check(
        self, report: str, ids: list[str], dataset: str | None, model: str | None
    ) -> dict[str, Any]:
        body = {"report": report, "ids": ids, "dataset": dataset, "model": model}
        return _json_or_raise(self._call("POST", "/admin/check", json=body))

    def query(self, text: str, fmt: str | None) -> QueryOutput:
        resp = self._call("POST", "/sparql", data={"query": text}, params={"format": fmt})
        if resp.status_code >= 400:
            _json_or_raise(resp)
        media = resp.headers.get("content-type", "").split(";")[0]
        return QueryOutput(media, resp.content)

    def close(self) -> None:
        return None


class RemoteError(NodeError):
    """A running node refused an operation: its status and description, passed on."""


def _json_or_raise(resp: Any) -> Any:
    if resp.status_code == 204:
        return {}
    try:
        body = resp.json()
    except ValueError:
        body = {"error_description": resp.text[:500]}
    if resp.status_code >= 400:
        detail = body.get("error_description") or body.get("error") or resp.reason_phrase
        raise RemoteError(f"HTTP {resp.status_code}: {detail}", status=resp.status_code)
    return body
