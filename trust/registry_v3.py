"""A registry client that speaks iSHARE 2.x or 3.0, found out by asking or pinned by config.

Discovery (`version="auto"`): the first lookup asks the registry for `/trustedList`, a path
only 3.0 has. 200 means 3.0 at that base URL; 404 (or 405) means a 2.x registry. The answer is
kept for the client's lifetime. `trust.registry_version` pins it when a registry answers both
at one base or discovery is not wanted.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from trust.errors import RegistryUnavailable
from trust.ishare3 import (
    PARTIES_CLAIM,
    PARTIES_KEY,
    PARTY_CLAIM,
    PARTY_KEY,
    TRUSTED_CLAIM,
    TRUSTED_KEY,
    V2,
    V3,
    party_from_v3,
    trusted_list_from_v3,
)
from trust.registry import MAX_LIST_PAGES, Party, RegistryClient, TrustedCA

AUTO = "auto"
REGISTRY_VERSIONS = (AUTO, V2, V3)


class VersionedRegistryClient(RegistryClient):
    """`RegistryClient` that reads 3.0 registries too (same cache, same verification)."""

    def __init__(self, *args: Any, version: str = AUTO, **kwargs: Any) -> None:
        if version not in REGISTRY_VERSIONS:
            raise ValueError(f"registry version must be one of {REGISTRY_VERSIONS}")
        super().__init__(*args, **kwargs)
        self._version = None if version == AUTO else version

    @property
    def version(self) -> str:
        """The iSHARE version this client speaks with the registry (discovered once)."""
        if self._version is None:
            # One discovery for all concurrent callers, its failure remembered (issue 17).
            self._version = self._flight.do(("version",), self._discover_version)
        return self._version

    def _discover_version(self) -> str:
        resp = self._get("/trustedList")
        if resp.status_code == 200:
            return V3
        if resp.status_code in (404, 405):
            return V2
        raise RegistryUnavailable(
            "registry_version", f"cannot tell the registry's version: HTTP {resp.status_code}"
        )

    def get_party(self, party_id: str) -> Party | None:
        if self.version == V2:
            return super().get_party(party_id)
        now = self._clock()
        with self._lock:
            hit = self._parties.get(party_id)
        if hit and hit[0] > now:
            return hit[1]
        return self._flight.do(("party3", party_id), lambda: self._fetch_party3(party_id, now))

    def _fetch_party3(self, party_id: str, now: float) -> Party | None:
        resp = self._get(f"/parties/{party_id}")
        party = None
        if resp.status_code != 404:
            party = party_from_v3(self._verified(resp, PARTY_KEY, PARTY_CLAIM))
            if not party.known_as(party_id):
                raise RegistryUnavailable("party_info", "registry answered for another party")
        with self._lock:
            self._parties[party_id] = (now + self.cache_seconds, party)
        return party

    def list_parties(self) -> list[Party]:
        if self.version == V2:
            return super().list_parties()
        out: list[Party] = []
        page = 1
        while page <= MAX_LIST_PAGES:
            resp = self._get(f"/parties?pageSize=100&page={page}")
            info = self._verified(resp, PARTIES_KEY, PARTIES_CLAIM)
            try:
                out += [party_from_v3(p) for p in info["data"]]
                pages = int(info.get("totalPages", 1))
            except (KeyError, TypeError, ValueError) as exc:
                raise RegistryUnavailable("parties_info", f"malformed partiesInfo: {exc}") from exc
            if page >= pages:
                break
            page += 1
        now = dt.datetime.now(dt.UTC)
        return [p for p in out if p.is_active(now)]

    def trusted_list(self) -> list[TrustedCA]:
        if self.version == V2:
            return super().trusted_list()
        now = self._clock()
        if self._trusted and self._trusted[0] > now:
            return self._trusted[1]
        return self._flight.do(("trusted_list3",), lambda: self._fetch_trusted3(now))

    def _fetch_trusted3(self, now: float) -> list[TrustedCA]:
        resp = self._get("/trustedList")
        entries = trusted_list_from_v3(self._verified(resp, TRUSTED_KEY, TRUSTED_CLAIM))
        self._trusted = (now + self.cache_seconds, entries)
        return entries
