"""Connectors turn sources (IFC, measurements, BAG, SQL) into RDF; never imports node/."""

from __future__ import annotations

from connectors.base import Connector, ConnectorResult, ProvRecord, iter_triples
from connectors.errors import ConnectorError, ShaclValidationError, UnknownConnectorKind

KINDS = ("ifc", "measurements", "bag", "sql")


def get(kind: str) -> Connector:
    """The connector for a kind (ifc, measurements, bag, sql); imports it only when asked."""
    if kind == "ifc":
        from connectors.ifc import IfcConnector

        return IfcConnector()
    if kind == "measurements":
        from connectors.measurements import MeasurementsConnector

        return MeasurementsConnector()
    if kind == "bag":
        from connectors.bag import BagConnector

        return BagConnector()
    if kind == "sql":
        from connectors.sql import SqlConnector

        return SqlConnector()
    raise UnknownConnectorKind(kind, KINDS)


__all__ = [
    "KINDS",
    "Connector",
    "ConnectorError",
    "ConnectorResult",
    "ProvRecord",
    "ShaclValidationError",
    "UnknownConnectorKind",
    "get",
    "iter_triples",
]
