"""ARCHITECTURE.md's module map names every module of the code, and names no module that is gone."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("node", "trust", "connectors", "vocab")


def _map_block() -> str:
    text = (ROOT / "ARCHITECTURE.md").read_text(encoding="utf-8")
    start = text.index("## Modules (one concept per file)")
    fence = text.index("```", start) + 3
    return text[fence : text.index("```", fence)]


def _modules() -> set[str]:
    return {
        p.name
        for pkg in PACKAGES
        for p in (ROOT / pkg).rglob("*.py")
        if p.name != "__init__.py" and ".venv" not in p.parts
    }


def test_every_module_is_on_the_map() -> None:
    named = set(re.findall(r"[\w]+\.py", _map_block()))
    assert not (_modules() - named), sorted(_modules() - named)


def test_the_map_names_no_missing_module() -> None:
    named = set(re.findall(r"[\w]+\.py", _map_block())) - {"__init__.py"}
    assert not (named - _modules()), sorted(named - _modules())
