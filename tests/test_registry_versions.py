"""Issue 16: the registry client speaks 2.x or 3.0 (discovered or pinned), against a real
registry app in-process; `trust.registry_version` is checked at start-up."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient
from test_bad_input import BASE, OWNER, InProcessNode, build_node

from node.config import ConfigError, load_settings
from trust.errors import RegistryUnavailable
from trust.registry_v3 import VersionedRegistryClient

ALIAS = "did:web:owner.example.com"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> InProcessNode:
    built = build_node(tmp_path_factory.mktemp("registry-versions"))
    registry = built.rt.layer.registry
    assert registry is not None
    party = registry.get_party(OWNER)
    assert party is not None
    party.also_known_as = [ALIAS]
    registry.put_party(party)
    return built


@pytest.fixture(scope="module")
def http(node: InProcessNode) -> Iterator[TestClient]:
    with TestClient(node.app, base_url=BASE) as client:
        yield client


def client(
    node: InProcessNode, http: TestClient, url: str, version: str
) -> VersionedRegistryClient:
    layer = node.rt.layer
    return VersionedRegistryClient(
        url, OWNER, node.rt.trusted_roots, layer.identity, http=http, version=version
    )


@pytest.mark.parametrize(
    "url,version,expected",
    [
        (BASE, "auto", "2.1"),  # the root has no /trustedList: a 2.x registry
        (BASE + "/v3", "auto", "3.0"),
        (BASE, "2.1", "2.1"),
        (BASE + "/v3", "3.0", "3.0"),
    ],
)
def test_discovers_or_pins_and_reads_the_same_records(
    node: InProcessNode, http: TestClient, url: str, version: str, expected: str
) -> None:
    c = client(node, http, url, version)
    assert c.version == expected
    party = c.get_party(OWNER)
    assert party is not None and party.party_id == OWNER
    assert [m.dataspace_id for m in party.dataspaces] == ["EU.DS.NL.DSGO"]
    assert party.certificates and party.adherence.status == "Active"
    assert OWNER in {p.party_id for p in c.list_parties()}
    assert c.trusted_fingerprints() == {
        e.certificate_fingerprint for e in node.rt.layer.registry.trusted_list() if e.usable
    }
    assert c.get_party("EU.EORI.NL000000999") is None


def test_v3_client_finds_a_party_by_alias(node: InProcessNode, http: TestClient) -> None:
    party = client(node, http, BASE + "/v3", "3.0").get_party(ALIAS)
    assert party is not None and party.party_id == OWNER and party.known_as(ALIAS)


def test_pinned_to_the_wrong_version_fails_clearly(node: InProcessNode, http: TestClient) -> None:
    with pytest.raises(RegistryUnavailable):
        client(node, http, BASE, "3.0").trusted_list()  # the root is 2.x: no /trustedList


def test_unknown_version_is_refused(node: InProcessNode, http: TestClient) -> None:
    with pytest.raises(ValueError, match="one of"):
        client(node, http, BASE, "2.0")


def test_registry_version_setting(node: InProcessNode, tmp_path: Path) -> None:
    text = node.settings.config_path.read_text(encoding="utf-8")
    config = tmp_path / "node.toml"
    bad = text.replace("[trust]", '[trust]\nregistry_version = "4.0"')
    assert bad != text
    config.write_text(bad, encoding="utf-8")
    with pytest.raises(ConfigError, match="trust.registry_version"):
        load_settings(config)
    config.write_text(text.replace("[trust]", '[trust]\nregistry_version = "3.0"'))
    assert load_settings(config).registry_version == "3.0"
