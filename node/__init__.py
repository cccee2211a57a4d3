"""dsgo-node: a federated linked-data node with an iSHARE-compatible trust layer.

Layers, outside in: `routes/` parse HTTP and respond; `service/` holds the use cases, which
decide through the one enforcement point (`enforcement`); `store/` stores; `sparql/` owns query
text. `create_app(settings)` builds the ASGI application; `cli` is the `dsgo` command.
"""

from __future__ import annotations

from typing import Any

__all__ = ["create_app", "load_settings"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from node.app import create_app

        return create_app
    if name == "load_settings":
        from node.config import load_settings

        return load_settings
    raise AttributeError(f"module 'node' has no attribute {name!r}")
