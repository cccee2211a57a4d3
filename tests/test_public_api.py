"""Each package states its public face with __all__, and every name in it resolves; trust/ is
embeddable: importing all of its public names loads nothing of node/."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

PACKAGES = [
    "trust",
    "node",
    "node.routes",
    "node.service",
    "node.sparql",
    "node.store",
    "node.cli",
    "vocab.namespaces",
    "vocab.iris",
]


@pytest.mark.parametrize("name", PACKAGES)
def test_every_public_name_resolves(name: str) -> None:
    module = importlib.import_module(name)
    assert isinstance(module.__all__, list)
    for public in module.__all__:
        assert getattr(module, public) is not None, f"{name}.{public}"


def test_unknown_names_are_attribute_errors() -> None:
    import trust

    with pytest.raises(AttributeError):
        trust.NoSuchThing  # noqa: B018


def test_trust_loads_without_node() -> None:
    code = (
        "import sys, trust\n"
        "[getattr(trust, n) for n in trust.__all__]\n"
        "loaded = sorted(m for m in sys.modules if m == 'node' or m.startswith('node.'))\n"
        "print(','.join(loaded))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
