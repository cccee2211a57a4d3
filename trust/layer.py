"""TrustLayer: one facade the node wires from settings (identity, registry, replay db, token key)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from trust.access_token import (
    AccessClaims,
    AccessTokenIssuer,
    AccessTokenVerifier,
    load_or_create_signing_key,
)
from trust.assertion import AuthenticatedClient, validate_token_request
from trust.capabilities import capabilities_info
from trust.client import TrustClient
from trust.errors import InvalidRequest, NotFound
from trust.ishare3 import check_v21_party_query, v21_filters
from trust.ishare_jwt import create_signed_response
from trust.pki import PartyIdentity, normalise_fingerprint
from trust.registry import (
    PAGE_SIZE,
    PartyDirectory,
    Registry,
    parties_response,
    party_response,
    trusted_list_response,
)
from trust.replay import ReplayCache
from trust.state import ReplayStore, TokenKeyStore
from trust.token_keys import rsa_jwk, thumbprint


class TrustLayer:
    """Token endpoint logic, access-token checks, capabilities and (optionally) the registry role."""

    def __init__(
        self,
        identity: PartyIdentity,
        trusted_sha256: set[str],
        directory: PartyDirectory,
        replay_db_path: Path | str,
        access_token_key_path: Path | str,
        base_url: str,
        *,
        registry: Registry | None = None,
        require_dataspace: str | None = None,
        clock: Any = time.time,
        resolve_party: Any = None,
        client_timeout: Any = 10.0,
        replay: ReplayStore | None = None,
        token_keys: TokenKeyStore | None = None,
    ) -> None:
        """`replay` and `token_keys` (e.g. the shared PostgreSQL state) replace the SQLite replay
        cache at `replay_db_path` and the single key file at `access_token_key_path`."""
        self.resolve_party = resolve_party
        self.client_timeout = client_timeout  # seconds or an httpx.Timeout, for outbound calls
        self.identity = identity
        self.trusted_sha256 = {normalise_fingerprint(f) for f in trusted_sha256}
        self.directory = directory
        self.registry = registry
        self.base_url = base_url.rstrip("/")
        self.require_dataspace = require_dataspace
        self.replay: ReplayStore = replay if replay is not None else ReplayCache(replay_db_path)
        self.token_keys = token_keys
        if token_keys is not None:
            self.issuer = AccessTokenIssuer(identity.party_id, keys=token_keys)
            self.verifier = AccessTokenVerifier(identity.party_id, keys=token_keys, clock=clock)
        else:
            key = load_or_create_signing_key(access_token_key_path)
            self.issuer = AccessTokenIssuer(identity.party_id, key)
            self.verifier = AccessTokenVerifier(identity.party_id, key.public_key(), clock=clock)
        self._clock = clock
        self._client: TrustClient | None = None

    @property
    def party_id(self) -> str:
        return self.identity.party_id

    def authenticate_client(
        self, fields: Mapping[str, str] | Iterable[tuple[str, str]]
    ) -> AuthenticatedClient:
        """All /connect/token checks; raises a TrustError naming the failed one."""
        return validate_token_request(
            fields,
            server_party_id=self.party_id,
            directory=self.directory,
            replay=self.replay,
            require_dataspace=self.require_dataspace,
            now=self._clock(),
        )

    def token_response(
        self, fields: Mapping[str, str] | Iterable[tuple[str, str]]
    ) -> dict[str, Any]:
        """The 200 body of /connect/token for a valid request."""
        client = self.authenticate_client(fields)
        return self.issuer.issue(client.party_id, client.scope, now=self._clock()).response()

    def verify_access_token(self, token: str | None) -> AccessClaims:
        return self.verifier.verify(token)

    def jwks(self) -> dict[str, Any]:
        """The public keys this node's access tokens verify with (GET /.well-known/jwks.json)."""
        if self.token_keys is not None:
            return self.token_keys.jwks(self._clock())
        assert self.issuer.key is not None
        public = self.issuer.key.public_key()
        return {
            "keys": [{**rsa_jwk(public), "kid": thumbprint(public), "use": "sig", "alg": "RS256"}]
        }

    def capabilities_response(self, caller: str | None) -> dict[str, str]:
        """`{"capabilities_token": JWT}`; restricted services and aud only for an authenticated caller."""
        info = capabilities_info(
            self.party_id,
            self.base_url,
            authenticated=caller is not None,
            registry_role=self.registry is not None,
        )
        token = create_signed_response(
            self.identity, "capabilities_info", info, caller, now=self._clock()
        )
        return {"capabilities_token": token}

    def parties_response(self, caller: str, query: Mapping[str, str]) -> dict[str, str]:
        """Registry role: GET /parties (filters eori/id, name, active_only, page).

        Without a filter (or with `*`) every party is listed, one page at a time, as the iSHARE
        parties endpoint does.
        """
        registry = self._require_registry()
        check_v21_party_query(query)
        pattern = query.get("eori") or query.get("id") or query.get("party_id")
        name = query.get("name")
        try:
            page = int(query.get("page", "1"))
            page_size = int(query.get("pageSize", str(PAGE_SIZE)))
        except ValueError as exc:
            raise InvalidRequest("page", "page and pageSize must be integers") from exc
        if page < 1 or not 1 <= page_size <= 100:
            raise InvalidRequest("page", "page >= 1 and 1 <= pageSize <= 100")
        active_only = query.get("active_only", "false").lower() == "true"
        parties = registry.find_parties(
            party_id=pattern if pattern and pattern != "*" else None,
            name=name if name and name != "*" else None,
            active_only=active_only,
        )
        parties = [p for p in parties if v21_filters(p, query)]
        return parties_response(
            self.identity, parties, caller, page=page, page_size=page_size, now=self._clock()
        )

    def party_response(self, caller: str, party_id: str) -> dict[str, str]:
        """Registry role: GET /parties/{id}."""
        party = self._require_registry().get_party(party_id)
        if party is None:
            raise NotFound("party_unknown", f"no party {party_id}")
        return party_response(self.identity, party, caller, now=self._clock())

    def trusted_list_response(self, caller: str) -> dict[str, str]:
        """Registry role: GET /trusted_list."""
        entries = self._require_registry().trusted_list()
        return trusted_list_response(self.identity, entries, caller, now=self._clock())

    def client(self) -> TrustClient:
        """A TrustClient acting as this node (for federated calls)."""
        if self._client is None:
            self._client = TrustClient(
                self.identity,
                self.trusted_sha256,
                clock=self._clock,
                resolve_party=self.resolve_party,
                timeout=self.client_timeout,
            )
        return self._client

    def _require_registry(self) -> Registry:
        if self.registry is None:
            raise NotFound("no_registry_role", "this node is not a participant registry")
        return self.registry
