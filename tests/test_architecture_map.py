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


def _imports(path: Path) -> set[str]:
    import ast

    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_layers_point_down() -> None:
    """Use cases, the enforcement point and stores import no HTTP handler and no page renderer;
    trust/ imports nothing of node/ (it is embeddable)."""
    rules = {
        "node/service": ("node.routes", "node.web", "node.app"),
        "node/store": ("node.routes", "node.web", "node.app", "node.service"),
        "node/enforcement.py": ("node.routes", "node.web", "node.app", "node.service"),
        "trust": ("node",),
    }
    wrong = []
    for where, banned in rules.items():
        target = ROOT / where
        for path in [target] if target.is_file() else sorted(target.rglob("*.py")):
            for module in _imports(path):
                if any(module == b or module.startswith(b + ".") for b in banned):
                    wrong.append(f"{path.relative_to(ROOT)} imports {module}")
    assert not wrong, wrong
