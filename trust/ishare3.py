"""iSHARE 3.0 wire formats of the registry role, beside the 2.x ones in `trust.registry`.

3.0 renames fields to camelCase (`trustedList`, `certificateFingerprint`, `partyInfo`), and a
party record becomes an `id`, `alsoKnownAs` and a list of typed *claims* (frameworkCompliance,
frameworkRole, x509Certificate, dataspaceMembership, authRegistry, ...). The node keeps one
`Party` record and writes it in either version; `party_from_v3` reads a 3.0 record back, so the
registry client can talk to a 3.0-only registry.

Status mapping (2.x adherence <-> 3.0 claim status): Active = active, NotActive = inactive,
Pending = suspended, Revoked = revoked. 3.0 requires an `endDate`; an open-ended record is
written with `OPEN_END` and read back as no end.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from trust.errors import RegistryUnavailable
from trust.registry import (
    DSGO_DATASPACE,
    Adherence,
    AuthRegistry,
    DataspaceMembership,
    Party,
    PartyCertificate,
    Role,
    TrustedCA,
)

V2 = "2.1"
V3 = "3.0"
VERSIONS = (V2, V3)
FRAMEWORK_ID = "iSHARE"
OPEN_END = "9999-12-31T23:59:59Z"
_CLAIM_NS = uuid.UUID("5b1c2f0e-8a55-4d1e-9a53-1c8f3d0e6a11")
_TO_V3_STATUS = {
    "Active": "active",
    "NotActive": "inactive",
    "Pending": "suspended",
    "Revoked": "revoked",
}
_FROM_V3_STATUS = {v: k for k, v in _TO_V3_STATUS.items()}
_LOA = {"low": "low", "substantial": "substantial", "high": "high"}

# The 3.0 names of the signed-response claims and their response keys.
PARTY_CLAIM, PARTY_KEY = "partyInfo", "partyToken"
PARTIES_CLAIM, PARTIES_KEY = "partiesInfo", "partiesToken"
TRUSTED_CLAIM, TRUSTED_KEY = "trustedList", "trustedListToken"
DATASPACES_CLAIM, DATASPACES_KEY = "dataspacesInfo", "dataspacesToken"
FRAMEWORKS_CLAIM, FRAMEWORKS_KEY = "frameworksInfo", "frameworksToken"
CAPABILITIES_CLAIM, CAPABILITIES_KEY = "capabilitiesInfo", "capabilitiesToken"
DELEGATION_KEY = "delegationToken"


@dataclass(frozen=True)
class DataspaceDescription:
    """What `/dataspaces` says about the data space this registry serves."""

    id: str = DSGO_DATASPACE
    title: str = "Digitaal Stelsel Gebouwde Omgeving (DSGO)"
    description_url: str = "https://www.digigo.nu/dsgo/"
    website: str = "https://www.digigo.nu/"
    gov_body: str = "DigiGO"
    countries: tuple[str, ...] = ("NL",)
    sectors: tuple[str, ...] = ("Built environment",)
    roles: tuple[str, ...] = (
        "ServiceConsumer",
        "ServiceProvider",
        "AuthorisationRegistry",
        "ParticipantRegistry",
    )

    def to_v3(self, registrar: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "dataSpaceDescriptionUrl": self.description_url,
            "defaultParticipantIdentifierName": "EORI or did:ishare",
            "defaultParticipantIdentifierPrefix": "did:ishare:",
            "website": self.website,
            "govBody": self.gov_body,
            "registrarIds": [registrar],
            "status": "active",
            "countryRegistration": self.countries[0],
            "countriesOperation": list(self.countries),
            "sectors": list(self.sectors),
            "agreements": [],
            "roles": [{"id": r, "title": r, "agreements": []} for r in self.roles],
        }


@dataclass(frozen=True)
class FrameworkDescription:
    """What `/frameworks` says: the iSHARE framework and the versions this node speaks."""

    id: str = FRAMEWORK_ID
    title: str = "iSHARE Trust Framework"
    def_url: str = "https://framework.ishare.eu/"
    owner: str = "iSHARE Foundation"
    versions: tuple[str, ...] = VERSIONS
    roles: tuple[str, ...] = field(
        default=(
            "ServiceConsumer",
            "ServiceProvider",
            "EntitledParty",
            "AuthorisationRegistry",
            "IdentityProvider",
            "IdentityBroker",
            "ParticipantRegistry",
        )
    )

    def to_v3(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "defUrl": self.def_url,
            "website": self.def_url,
            "frameworkOwner": self.owner,
            "agreements": [],
            "versions": [{"version": v, "status": "active"} for v in self.versions],
            "roles": [{"id": r, "title": r, "agreements": []} for r in self.roles],
        }


def claim_id(party_id: str, kind: str, key: str) -> str:
    """A stable claim id (UUID 5): the same record gives the same ids on every request."""
    return str(uuid.uuid5(_CLAIM_NS, f"{party_id}\n{kind}\n{key}"))


def party_to_v3(party: Party, registrar: str) -> dict[str, Any]:
    """The 3.0 `party` object: id, name, alsoKnownAs and the record as typed claims."""
    pid = party.party_id
    adherence = party.adherence
    status = _TO_V3_STATUS.get(adherence.status, "inactive")

    def skeleton(kind: str, key: str, start: str | None, end: str | None) -> dict[str, Any]:
        out = {"id": claim_id(pid, kind, key), "type": kind, "status": status}
        out["registrarId"] = registrar
        out["startDate"] = start or adherence.start_date or OPEN_END
        out["endDate"] = end or OPEN_END
        return out

    claims: list[dict[str, Any]] = []
    compliance = skeleton(
        "frameworkCompliance", FRAMEWORK_ID, adherence.start_date, adherence.end_date
    )
    compliance.update(frameworkId=FRAMEWORK_ID, additionalInfo={"publiclyPublishable": True})
    if party.capability_url:
        compliance["capabilityUrl"] = party.capability_url
    claims.append(compliance)
    for role in party.roles:
        claim = skeleton("frameworkRole", role.role, role.start_date, role.end_date)
        claim.update(
            frameworkId=FRAMEWORK_ID,
            roleId=role.role,
            title=role.role,
            loa=_LOA.get(role.loa.lower(), "not-applicable"),
            compliancyVerified="yes",
            legalAdherence="yes",
        )
        claims.append(claim)
    for cert in party.certificates:
        claim = skeleton("x509Certificate", cert.x5t_s256, cert.enabled_from, None)
        claim.update(
            status="active" if status == "active" else "revoked",
            subjectName=cert.subject_name,
            certificateType=cert.certificate_type,
            x5c=cert.x5c,
        )
        claim["x5t#s256"] = cert.x5t_s256
        claims.append(claim)
    for member in party.dataspaces:
        claim = skeleton("dataspaceMembership", member.dataspace_id, member.start_date, None)
        claim["endDate"] = member.end_date or OPEN_END
        claim.update(dataspaceId=member.dataspace_id, legalAdherence="yes")
        if party.capability_url:
            claim["capabilityUrl"] = party.capability_url
        claims.append(claim)
    for reg in party.auth_registries:
        key = f"{reg.id}|{reg.service_provider}|{reg.service}"
        claim = skeleton("authRegistry", key, adherence.start_date, adherence.end_date)
        claim.update(
            name=reg.name or reg.id,
            authRegistryId=reg.id,
            authUrl=reg.url or "",
            dataspaceId=reg.dataspace_id or DSGO_DATASPACE,
        )
        if reg.service_provider:
            claim["serviceProviderPartyId"] = reg.service_provider
        if reg.service:
            claim["serviceIdentifier"] = reg.service
        claims.append(claim)
    out: dict[str, Any] = {"id": pid, "name": party.name, "claims": claims}
    if party.also_known_as:
        out["alsoKnownAs"] = list(party.also_known_as)
    return out


def party_from_v3(doc: Mapping[str, Any]) -> Party:
    """Read a 3.0 party record (ours or another registry's) into a `Party`."""
    try:
        pid = doc["id"]
        claims = [c for c in doc.get("claims") or [] if isinstance(c, Mapping)]
        if not isinstance(pid, str):
            raise TypeError("id is not a string")
        adherence = Adherence("NotActive")
        roles: list[Role] = []
        certs: list[PartyCertificate] = []
        spaces: list[DataspaceMembership] = []
        registers: list[AuthRegistry] = []
        capability_url = None
        for c in claims:
            kind = c.get("type")
            start, end = c.get("startDate"), _end(c.get("endDate"))
            if kind == "frameworkCompliance" and c.get("frameworkId", FRAMEWORK_ID) == FRAMEWORK_ID:
                status = _FROM_V3_STATUS.get(str(c.get("status")), "NotActive")
                adherence = Adherence(status, start, end)
                capability_url = c.get("capabilityUrl") or capability_url
            elif kind == "frameworkRole" and c.get("status") == "active":
                loa = str(c.get("loa") or "high").capitalize()
                roles.append(Role(str(c["roleId"]), start, end, loa))
            elif kind == "x509Certificate" and c.get("status") == "active":
                certs.append(
                    PartyCertificate(
                        subject_name=str(c.get("subjectName", "")),
                        x5c=str(c.get("x5c", "")),
                        x5t_s256=str(c["x5t#s256"]),
                        certificate_type=str(c.get("certificateType", "")),
                        enabled_from=start,
                    )
                )
            elif kind == "dataspaceMembership" and c.get("status") == "active":
                spaces.append(DataspaceMembership(str(c["dataspaceId"]), start, end))
                capability_url = capability_url or c.get("capabilityUrl")
            elif kind == "authRegistry" and c.get("status") == "active":
                registers.append(
                    AuthRegistry(
                        id=str(c["authRegistryId"]),
                        name=str(c.get("name", "")),
                        url=str(c.get("authUrl", "")),
                        dataspace_id=str(c.get("dataspaceId", "")),
                        service_provider=str(c.get("serviceProviderPartyId", "")),
                        service=str(c.get("serviceIdentifier", "")),
                    )
                )
        aka = doc.get("alsoKnownAs") or []
        return Party(
            party_id=pid,
            name=str(doc.get("name") or ""),
            adherence=adherence,
            roles=roles,
            certificates=certs,
            dataspaces=spaces,
            capability_url=capability_url,
            auth_registries=registers,
            also_known_as=[a for a in aka if isinstance(a, str)],
        )
    except (KeyError, TypeError, AttributeError) as exc:
        raise RegistryUnavailable("party_info", f"malformed 3.0 party: {exc}") from exc


def trusted_list_to_v3(entries: Sequence[TrustedCA]) -> list[dict[str, Any]]:
    """The 3.0 `trustedList` items (camelCase `certificateFingerprint`)."""
    return [
        {
            "subject": e.subject,
            "certificateFingerprint": e.certificate_fingerprint,
            "validity": e.validity,
            "status": e.status,
        }
        for e in entries
    ]


def trusted_list_from_v3(items: Any) -> list[TrustedCA]:
    """Read 3.0 `trustedList` items; RegistryUnavailable if malformed."""
    if not isinstance(items, list):
        raise RegistryUnavailable("trusted_list", "trustedList is not a list")
    try:
        return [
            TrustedCA(
                str(i.get("subject") or ""),
                str(i["certificateFingerprint"]),
                str(i.get("validity") or ""),
                str(i.get("status") or ""),
            )
            for i in items
        ]
    except (KeyError, TypeError, AttributeError) as exc:
        raise RegistryUnavailable("trusted_list", "malformed trustedList") from exc


def page_of(items: Sequence[Any], page: int, page_size: int) -> dict[str, Any]:
    """3.0 pagination info with the items of one page as `data`."""
    start = (page - 1) * page_size
    data = list(items[start : start + page_size])
    return {
        "currentPage": page,
        "pageSize": page_size,
        "totalPages": max(1, math.ceil(len(items) / page_size)),
        "totalCount": len(items),
        "count": len(data),
        "data": data,
    }


def capabilities_v3(
    base_url: str, *, authenticated: bool, registry_role: bool = False
) -> dict[str, Any]:
    """3.0 `capabilitiesInfo`: the 3.0 API under `{base}/v3`, the data services at the root."""
    base = base_url.rstrip("/")
    v3 = f"{base}/v3"
    token = f"{v3}/connect/token"

    def svc(ident: str, title: str, url: str, kind: str, methods: list[str]) -> dict[str, Any]:
        return {
            "identifier": ident,
            "title": title,
            "endpointDescription": url,
            "endpointURL": url,
            "tokenEndpoint": token,
            "status": "active",
            "serviceType": kind,
            "version": {"capabilityVersion": "1.0", "compliesWithFrameworkVersions": [V3]},
            "methods": methods,
        }

    public = [
        svc("connect-token", "iSHARE token endpoint", token, "framework-defined", ["POST"]),
        svc("capabilities", "Capabilities", f"{v3}/capabilities", "framework-defined", ["GET"]),
    ]
    restricted = [
        svc("delegation", "Delegation evidence", f"{v3}/delegation", "framework-defined", ["POST"]),
        svc(
            "sparql",
            "SPARQL 1.1 query endpoint",
            f"{base}/sparql",
            "dataspace-defined",
            ["GET", "POST"],
        ),
        svc("resources", "Linked-data resources", f"{base}/id/", "dataspace-defined", ["GET"]),
        svc("catalog", "DCAT catalog", f"{base}/catalog", "dataspace-defined", ["GET"]),
    ]
    if registry_role:
        restricted += [
            svc(
                "parties",
                "Participant registry parties",
                f"{v3}/parties",
                "framework-defined",
                ["GET"],
            ),
            svc("trustedList", "Trusted list", f"{v3}/trustedList", "framework-defined", ["GET"]),
            svc("dataspaces", "Dataspaces", f"{v3}/dataspaces", "framework-defined", ["GET"]),
            svc("frameworks", "Frameworks", f"{v3}/frameworks", "framework-defined", ["GET"]),
        ]
    return {"publicServices": public, "restrictedServices": restricted if authenticated else []}


def asdict_party(party: Party) -> dict[str, Any]:
    """A plain dict of a Party (for tests and debugging)."""
    return asdict(party)


def _end(value: Any) -> str | None:
    return None if not isinstance(value, str) or value.startswith("9999-") else value


# iSHARE 2.1 GET /parties query parameters with a type the node checks (400 otherwise).
V21_BOOLEAN = ("active_only", "certified_only", "publiclyPublishable", "compliancyVerified")
V21_BOOLEAN += ("legalAdherence",)
V21_DATETIME = ("date_time", "adherenceStartdate", "adherenceEnddate")
V21_INTEGER = ("companyPhone", "page", "pageSize")


def check_v21_party_query(query: Any) -> None:
    """Refuse 2.1 /parties parameters of the wrong type (every value of a repeated one)."""
    from trust.errors import InvalidRequest

    def values(name: str) -> list[str]:
        if hasattr(query, "getlist"):
            return list(query.getlist(name))
        return [query[name]] if name in query else []

    for name in V21_BOOLEAN:
        for v in values(name):
            if v.lower() not in ("true", "false"):
                raise InvalidRequest(name, f"{name} must be true or false")
    for name in V21_DATETIME:
        for v in values(name):
            try:
                dt.datetime.fromisoformat(v.replace("Z", "+00:00"))
            except ValueError:
                raise InvalidRequest(name, f"{name} must be an ISO 8601 date-time") from None
    for name in V21_INTEGER:
        for v in values(name):
            text = v.strip()
            if not text.lstrip("-").isdigit() or not -(2**31) <= int(text) < 2**31:
                raise InvalidRequest(name, f"{name} must be a 32-bit integer")


def v21_filters(party: Party, query: Any) -> bool:
    """The 2.1 filters adherenceStatus, role and dataSpaceID (exact match)."""
    status = query.get("adherenceStatus")
    if status and party.adherence.status != status:
        return False
    role = query.get("role")
    if role and role not in {r.role for r in party.roles}:
        return False
    space = query.get("dataSpaceID")
    return not (space and space not in {m.dataspace_id for m in party.dataspaces})
