"""The node's iSHARE v2.1 capabilities_info (publicServices / restrictedServices)."""

from __future__ import annotations

from typing import Any

FRAMEWORK_VERSIONS = ["2.1"]


def capabilities_info(
    party_id: str, base_url: str, *, authenticated: bool, registry_role: bool = False
) -> dict[str, Any]:
    """Public services always; restricted ones only for an authenticated caller."""
    base = base_url.rstrip("/")
    token = f"{base}/connect/token"
    public = [
        _service(
            "connect-token", "iSHARE token endpoint", token, token, "framework-defined", ["POST"]
        ),
        _service(
            "capabilities",
            "Capabilities",
            f"{base}/capabilities",
            token,
            "framework-defined",
            ["GET"],
        ),
    ]
    restricted = [
        _service(
            "sparql",
            "SPARQL 1.1 query endpoint",
            f"{base}/sparql",
            token,
            "dataspace-defined",
            ["GET", "POST"],
        ),
        _service(
            "resources", "Linked-data resources", f"{base}/id/", token, "dataspace-defined", ["GET"]
        ),
        _service("catalog", "DCAT catalog", f"{base}/catalog", token, "dataspace-defined", ["GET"]),
    ]
    if registry_role:
        restricted += [
            _service(
                "parties",
                "Participant registry parties",
                f"{base}/parties",
                token,
                "framework-defined",
                ["GET"],
            ),
            _service(
                "trusted-list",
                "Trusted list",
                f"{base}/trusted_list",
                token,
                "framework-defined",
                ["GET"],
            ),
        ]
    return {
        "party_id": party_id,
        "publicServices": public,
        "restrictedServices": restricted if authenticated else [],
    }


def _service(
    ident: str, title: str, url: str, token: str, kind: str, methods: list[str]
) -> dict[str, Any]:
    return {
        "identifier": ident,
        "title": title,
        "descriptionURL": url,
        "endpointURL": url,
        "tokenEndpoint": token,
        "status": "active",
        "serviceType": kind,
        "version": {
            "capabilityVersion": "1.0",
            "compliesWithFrameworkVersions": FRAMEWORK_VERSIONS,
        },
        "methods": methods,
    }
