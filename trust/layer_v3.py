"""The iSHARE 3.0 answers of a node (capabilities; registry role: parties, trusted list,
dataspaces, frameworks), signed like the 2.x ones by `trust.layer.TrustLayer`'s identity."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from trust.errors import InvalidRequest, NotFound
from trust.ishare3 import (
    CAPABILITIES_CLAIM,
    CAPABILITIES_KEY,
    DATASPACES_CLAIM,
    DATASPACES_KEY,
    FRAMEWORKS_CLAIM,
    FRAMEWORKS_KEY,
    PARTIES_CLAIM,
    PARTIES_KEY,
    PARTY_CLAIM,
    PARTY_KEY,
    TRUSTED_CLAIM,
    TRUSTED_KEY,
    DataspaceDescription,
    FrameworkDescription,
    capabilities_v3,
    page_of,
    party_to_v3,
    trusted_list_to_v3,
)
from trust.ishare_jwt import create_jwt, create_signed_response
from trust.layer import TrustLayer
from trust.registry import PAGE_SIZE, Registry

# Query parameters of GET /parties in 3.0 (claimFilter[...] keys are read separately).
PARTY_QUERY = frozenset({"id", "alsoKnownAs", "name", "page", "pageSize"})


class TrustLayerV3:
    """3.0 responses over the same identity, registry and clock as the 2.x `TrustLayer`."""

    def __init__(
        self,
        layer: TrustLayer,
        dataspace: DataspaceDescription | None = None,
        framework: FrameworkDescription | None = None,
    ) -> None:
        self.layer = layer
        self.dataspace = dataspace or DataspaceDescription()
        self.framework = framework or FrameworkDescription()

    def _sign(self, claim: str, value: Any, caller: str | None) -> str:
        return create_signed_response(
            self.layer.identity, claim, value, caller, now=self.layer._clock()
        )

    def capabilities_response(self, caller: str | None) -> dict[str, str]:
        """`{"capabilitiesToken": JWT}` with capabilitiesInfo (restricted only for a caller)."""
        info = capabilities_v3(
            self.layer.base_url,
            authenticated=caller is not None,
            registry_role=self.layer.registry is not None,
        )
        return {CAPABILITIES_KEY: self._sign(CAPABILITIES_CLAIM, info, caller)}

    def parties_response(self, caller: str, query: Mapping[str, str]) -> dict[str, str]:
        """GET /parties?id=&alsoKnownAs=&name=&claimFilter[type.field]=&page=&pageSize=."""
        registry = self._registry()
        page, size = paging(query)
        pid, aka, name = query.get("id"), query.get("alsoKnownAs"), query.get("name")
        if name is not None and name.count("*") > 1:
            raise InvalidRequest("name", "name may contain a single * wildcard")
        filters = claim_filters(query)
        found = registry.find_parties(
            name=name if name and name != "*" else None, also_known_as=aka or None
        )
        if pid:
            found = [p for p in found if p.known_as(pid)]
        records = [party_to_v3(p, self.layer.party_id) for p in found]
        records = [r for r in records if _claims_match(r, filters)]
        info = page_of(records, page, size)
        return {PARTIES_KEY: self._sign(PARTIES_CLAIM, info, caller)}

    def party_response(self, caller: str, party_id: str) -> dict[str, str]:
        """GET /parties/{partyId}: by id or any alsoKnownAs id."""
        party = self._registry().get_party(party_id)
        if party is None:
            raise NotFound("party_unknown", f"no party {party_id}")
        doc = party_to_v3(party, self.layer.party_id)
        return {PARTY_KEY: self._sign(PARTY_CLAIM, doc, caller)}

    def trusted_list_response(self, caller: str) -> dict[str, str]:
        """GET /trustedList."""
        items = trusted_list_to_v3(self._registry().trusted_list())
        return {TRUSTED_KEY: self._sign(TRUSTED_CLAIM, items, caller)}

    def dataspaces_response(self, caller: str, query: Mapping[str, str]) -> dict[str, str]:
        """GET /dataspaces: the data space this registry serves."""
        self._registry()
        page, size = paging(query)
        info = page_of([self.dataspace.to_v3(self.layer.party_id)], page, size)
        # iSHARE 3.0's jwtPayloadDataspacesToken requires both `dataspacesInfo` and (in its
        # allOf) `dataspaceInfo`; the same object goes under both names.
        token = create_jwt(
            self.layer.identity,
            caller,
            {DATASPACES_CLAIM: info, "dataspaceInfo": info},
            now=self.layer._clock(),
        )
        return {DATASPACES_KEY: token}

    def frameworks_response(self, caller: str, query: Mapping[str, str]) -> dict[str, str]:
        """GET /frameworks: iSHARE, with the versions this registry speaks."""
        self._registry()
        page, size = paging(query)
        info = page_of([self.framework.to_v3()], page, size)
        return {FRAMEWORKS_KEY: self._sign(FRAMEWORKS_CLAIM, info, caller)}

    def _registry(self) -> Registry:
        if self.layer.registry is None:
            raise NotFound("no_registry_role", "this node is not a participant registry")
        return self.layer.registry


def paging(query: Mapping[str, str]) -> tuple[int, int]:
    """`page` (>= 1, default 1) and `pageSize` (1..100, default 10); 400 otherwise."""
    try:
        page = int(query.get("page", "1"))
        size = int(query.get("pageSize", str(PAGE_SIZE)))
    except ValueError as exc:
        raise InvalidRequest("page", "page and pageSize must be integers") from exc
    if page < 1 or not 1 <= size <= 100:
        raise InvalidRequest("page", "page >= 1 and 1 <= pageSize <= 100")
    return page, size


def claim_filters(query: Mapping[str, str]) -> dict[tuple[str | None, str], str]:
    """`claimFilter[claimType.property]=value` (or `claimFilter[property]`, any claim type)."""
    out: dict[tuple[str | None, str], str] = {}
    for key in query:
        if not key.startswith("claimFilter"):
            continue
        inner = key[len("claimFilter") :]
        if not (inner.startswith("[") and inner.endswith("]")) or len(inner) < 2:
            raise InvalidRequest("claimFilter", "use claimFilter[claimType.propertyName]=value")
        kind, dot, prop = inner[1:-1].rpartition(".")
        if dot and (not kind or not prop):
            raise InvalidRequest("claimFilter", "use claimFilter[claimType.propertyName]=value")
        out[(kind or None, prop)] = query[key]
    return out


def _claims_match(record: Mapping[str, Any], filters: dict[tuple[str | None, str], str]) -> bool:
    claims = record.get("claims") or []
    return all(
        any(kind in (None, c.get("type")) and str(c.get(prop)) == value for c in claims)
        for (kind, prop), value in filters.items()
    )


# --- the two 2.1 registry answers the node had not served: /dataspaces and /versions --------

V21_VERSION_FROM = "2023-01-31T00:00:00Z"  # iSHARE 2.1's own example date for its validity


def dataspaces_v21(layer: TrustLayer, caller: str, dataspace: DataspaceDescription) -> str:
    """2.1 `dataspace_list_token`: the data space this registry serves (snake_case).

    2.1's jwt_payload_dataspace_list_token requires `dataspaces_info` and describes
    `dataspace_info`; the same object goes under both names.
    """
    if layer.registry is None:
        raise NotFound("no_registry_role", "this node is not a participant registry")
    info = {
        "total_count": 1,
        "page_count": 1,
        "count": 1,
        "data": [
            {
                "dataspace_id": dataspace.id,
                "dataspace_title": dataspace.title,
                "dataspacedef_url": dataspace.description_url,
                "dataspace_website": dataspace.website,
                "status": "active",
                "country_reg": dataspace.countries[0],
                "countries_operation": list(dataspace.countries),
                "sectors": list(dataspace.sectors),
            }
        ],
    }
    claims = {"dataspaces_info": info, "dataspace_info": info}
    return create_jwt(layer.identity, caller, claims, now=layer._clock())


def versions_v21(layer: TrustLayer, caller: str | None) -> str:
    """2.1 `versions_token`: the scheme version this API speaks (2.1's `Version` object)."""
    info = {
        "version_name": "2.1",
        "valid_from": V21_VERSION_FROM,
        "valid_to": None,
        "version_status": "active",
    }
    return create_signed_response(layer.identity, "versions_info", info, caller, now=layer._clock())
