"""Connector failures that name the source, the position in it and the reason."""

from __future__ import annotations


class ConnectorError(Exception):
    """A source could not be converted; `code` says how (the node maps it to an HTTP status)."""

    code = "connector_failed"  # the source was read but cannot be converted (422)

    def __init__(self, source: str, position: str, reason: str) -> None:
        self.source = str(source)
        self.position = position
        self.reason = reason
        where = f"{self.source}: {position}" if position else self.source
        super().__init__(f"{where}: {reason}")


class UnknownConnectorKind(ConnectorError):
    """No connector is registered for the requested kind (400)."""

    code = "unknown_connector"

    def __init__(self, kind: str, known: tuple[str, ...]) -> None:
        super().__init__(kind, "", f"unknown connector kind (known: {', '.join(known)})")
        self.kind = kind


class SourceUnreadable(ConnectorError):
    """The source is missing or not readable as what it should be (400)."""

    code = "source_unreadable"


class SourceUnsupported(ConnectorError):
    """The source is readable but of a kind or version this connector does not take (415)."""

    code = "unsupported_source"


class ShaclValidationError(ConnectorError):
    """The connector's output does not conform to its SHACL shapes at the chosen severity."""

    code = "shacl_violation"

    def __init__(self, source: str, kind: str, results: list[str], total: int) -> None:
        shown = "; ".join(results)
        more = f" (and {total - len(results)} more)" if total > len(results) else ""
        super().__init__(source, f"SHACL shapes '{kind}'", f"{total} result(s): {shown}{more}")
        self.results = results
        self.total = total
