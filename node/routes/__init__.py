"""HTTP handlers: each parses a request, calls the enforcement point or a use case, and writes
the response. Only `node.app` imports these modules; they have no public face of their own."""

__all__: list[str] = []
