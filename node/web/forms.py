"""Form posts from the node's pages: size and type checked, fields read, the CSRF field checked."""

from __future__ import annotations

import datetime as dt
from urllib.parse import parse_qsl

from starlette.requests import Request

from node.errors import BadRequest, ProtocolError
from node.web.csrf import FIELD, check_csrf

MAX_FORM_BYTES = 16 * 1024
FORM = "application/x-www-form-urlencoded"


async def read_form(request: Request) -> dict[str, str]:
    """The fields of a urlencoded form post (the last value of each), after the CSRF check."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != FORM:
        raise ProtocolError(f"send the form as {FORM}", 415)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise ProtocolError(f"form over {MAX_FORM_BYTES} bytes", 413)
    try:
        pairs = parse_qsl(bytes(body).decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        raise BadRequest("the form is not UTF-8", code="invalid_request") from None
    fields = {key: value.strip() for key, value in pairs}
    check_csrf(request, fields.get(FIELD))
    return fields


def required(fields: dict[str, str], name: str, limit: int = 500) -> str:
    value = fields.get(name, "")
    if not value:
        raise BadRequest(f"{name}: required", code="invalid_request", field=name)
    if len(value) > limit:
        raise BadRequest(f"{name}: longer than {limit} characters", code="invalid_request")
    return value


def word_list(value: str, name: str, limit: int = 50) -> list[str]:
    """Comma- or whitespace-separated words (attributes, ids)."""
    words = [w for w in value.replace(",", " ").split() if w]
    if len(words) > limit:
        raise BadRequest(f"{name}: at most {limit} entries", code="invalid_request")
    return words


def end_of_day(value: str, name: str) -> int:
    """An ISO date (the whole day counts) or date-time, as epoch seconds; must lie ahead."""
    try:
        if len(value) == 10:
            when = dt.datetime.fromisoformat(value) + dt.timedelta(days=1)
        else:
            when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(
            f"{name}: not an ISO date such as 2027-12-31: {value[:40]!r}", code="invalid_request"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    if when <= dt.datetime.now(dt.UTC):
        raise BadRequest(f"{name}: {value} has already passed", code="invalid_request")
    return int(when.timestamp())
