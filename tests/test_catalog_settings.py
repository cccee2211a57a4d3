"""`[catalog]`: every wrong key is refused with one message naming it; defaults fill the rest."""

from __future__ import annotations

import pytest

from node.catalog_settings import ACCESS_RIGHTS, catalog_settings
from node.config import ConfigError

CC_BY = "http://creativecommons.org/licenses/by/4.0/"


def test_defaults_and_per_dataset_entries() -> None:
    cat = catalog_settings(
        {
            "license": CC_BY,
            "keywords": "bim, ifc",
            "datasets": {"bag": {"access_rights": "public", "title": "BAG"}},
        }
    )
    bag, other = cat.meta("bag"), cat.meta("other")
    assert (bag.title, bag.license, bag.access_rights) == ("BAG", CC_BY, ACCESS_RIGHTS["public"])
    assert other.access_rights == ACCESS_RIGHTS["restricted"] and other.title is None
    assert other.keywords == ("bim", "ifc")
    assert catalog_settings({}).meta("x").license is None  # no licence is invented


@pytest.mark.parametrize(
    ("section", "named"),
    [
        ({"colour": "blue"}, "catalog: unknown key"),
        ({"datasets": "bim"}, "catalog.datasets: use [catalog.datasets.NAME]"),
        ({"datasets": {"Bad Name": {}}}, "catalog.datasets.Bad Name"),
        ({"datasets": {"bim": "x"}}, "catalog.datasets.bim: must be a table"),
        ({"datasets": {"bim": {"licence": CC_BY}}}, "catalog.datasets.bim: unknown key"),
        ({"datasets": {"bim": {"license": "CC-BY"}}}, "catalog.datasets.bim.license"),
        ({"datasets": {"bim": {"title": ""}}}, "catalog.datasets.bim.title"),
        ({"datasets": {"bim": {"access_rights": "open"}}}, "catalog.datasets.bim.access_rights"),
        ({"license": "not an iri"}, "catalog.license"),
        ({"description": 3}, "catalog.description"),
        ({"contact_email": "nobody"}, "catalog.contact_email"),
        ({"language": "Dutch!"}, "catalog.language"),
        ({"keywords": [1, 2]}, "catalog.keywords"),
    ],
)
def test_wrong_settings_are_named(section: dict, named: str) -> None:
    with pytest.raises(ConfigError) as err:
        catalog_settings(section)
    assert named in str(err.value)
