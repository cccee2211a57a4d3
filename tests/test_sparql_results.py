"""SPARQL result writing: the row limit added to SELECT queries, and pyoxigraph's own writers
capped, counted and timed out the way the row-by-row writers are."""

from __future__ import annotations

import csv
import io
import random
import time
import xml.etree.ElementTree as ET

import orjson
import pyoxigraph as ox
import pytest

from node.sparql.outline import outline
from node.sparql.results import (
    QueryTimeout,
    _cap_rows,
    _json_rows,
    read_solutions,
    serialise_solutions,
    write,
)
from node.sparql.rewrite import with_limit


def limit_select(query: str, rows: int) -> str | None:
    """The capped text (None when the node leaves the cap to the reader of the results)."""
    limited = with_limit(outline(query), rows)
    return None if limited is None else limited.text


MEDIA = [
    "application/sparql-results+json",
    "application/sparql-results+xml",
    "text/csv",
    "text/tab-separated-values",
]
RES = "{http://www.w3.org/2005/sparql-results#}"
# Literal texts that look like the syntax of every results format.
AWKWARD = [
    'a,{"b"}',
    "x},{",
    ",{}",
    "line\nbreak",
    "crlf\r\nin text",
    'quote " and ""',
    "tab\there",
    "<result>",
    "</results>",
    "[{",
    "back\\slash",
    "",
]


# --- limit_select ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("SELECT * { ?s ?p ?o }", "SELECT * { ?s ?p ?o }\nLIMIT 10"),
        (
            "# c\nprefix : <http://e/>\nselect * {?s ?p ?o}",
            "# c\nprefix : <http://e/>\nselect * {?s ?p ?o}\nLIMIT 10",
        ),
        ("SELECT * { ?s ?p ?o } LIMIT 3", "SELECT * { ?s ?p ?o } LIMIT 3"),
        ("SELECT * { ?s ?p ?o } LIMIT 300", "SELECT * { ?s ?p ?o } LIMIT 10"),
        ("SELECT * { ?s ?p ?o } limit 300 OFFSET 5", "SELECT * { ?s ?p ?o } limit 10 OFFSET 5"),
        ("SELECT * { ?s ?p ?o } OFFSET 5", "SELECT * { ?s ?p ?o } OFFSET 5\nLIMIT 10"),
        (
            "SELECT * { ?s ?p ?o } VALUES ?s { <http://e/a> }",
            "SELECT * { ?s ?p ?o } LIMIT 10\nVALUES ?s { <http://e/a> }",
        ),
        (
            "SELECT * { { SELECT * { ?s ?p ?o } LIMIT 100 } } ORDER BY ?s",
            "SELECT * { { SELECT * { ?s ?p ?o } LIMIT 100 } } ORDER BY ?s\nLIMIT 10",
        ),
        ('SELECT * { ?s ?p "LIMIT 99" }', 'SELECT * { ?s ?p "LIMIT 99" }\nLIMIT 10'),
        (
            "SELECT * { ?s ?p ?o } # trailing comment",
            "SELECT * { ?s ?p ?o } # trailing comment\nLIMIT 10",
        ),
        ("ASK { ?s ?p ?o }", None),
        ("CONSTRUCT WHERE { ?s ?p ?o }", None),
        ("DESCRIBE <http://e/a>", None),
        ("PREFIX : <http://e/> CONSTRUCT { ?s :p ?o } WHERE { ?s ?p ?o } LIMIT 5", None),
        ("SELECT * { ?s ?p ?o } LIMIT ?x", None),
    ],
)
def test_limit_select(query: str, expected: str | None) -> None:
    assert limit_select(query, 10) == expected


def test_limited_queries_run_and_stop_at_the_limit() -> None:
    store = _store([f"v{i}" for i in range(30)])
    for query in [
        "SELECT ?o { ?s ?p ?o }",
        "SELECT ?o { ?s ?p ?o } ORDER BY ?o",
        "SELECT ?o { ?s ?p ?o } LIMIT 50",
        "SELECT ?o { ?s ?p ?o } VALUES ?p { <http://e/p> }",
        "SELECT ?o { ?s ?p ?o } # no newline at the end",
    ]:
        limited = limit_select(query, 7)
        assert limited is not None
        assert len(list(store.query(limited))) == 7, limited


# --- counting and cutting pyoxigraph's output ---------------------------------------------------


def test_json_row_count_agrees_with_a_parser() -> None:
    rnd = random.Random(5)
    alphabet = ["a", ",", "{", "}", '"', "[", "]", "\\", ":", " ", "\n", "é"]
    queries = [
        "SELECT ?s ?o WHERE { ?s ?p ?o }",
        "SELECT ?o ?x WHERE { ?s ?p ?o OPTIONAL { ?s <http://e/none> ?x } }",
        "SELECT ?x ?o WHERE { ?s ?p ?o OPTIONAL { ?s <http://e/none> ?x } }",
        "SELECT ?x WHERE { ?s ?p ?o OPTIONAL { ?s <http://e/none> ?x } }",
        "SELECT * WHERE { }",
        "SELECT ?s WHERE { ?s <http://e/none> ?o }",
    ]
    counted = 0
    for _ in range(1500):
        texts = ["".join(rnd.choice(alphabet) for _ in range(rnd.randint(0, 8))) for _ in range(6)]
        body = (
            _store(texts[: rnd.randint(0, 6)])
            .query(rnd.choice(queries))
            .serialize(format=ox.QueryResultsFormat.JSON)
        )
        rows = _json_rows(body)
        if rows is not None:
            counted += 1
            assert rows == len(orjson.loads(body)["results"]["bindings"]), body
    assert counted > 500  # the fast count answers most of them


@pytest.mark.parametrize("media", MEDIA)
def test_cap_rows_cuts_every_format_to_a_valid_document(media: str) -> None:
    store = _store(AWKWARD * 3)
    query = (
        "SELECT ?s ?o ?none WHERE { ?s ?p ?o OPTIONAL { ?s <http://e/none> ?none } } ORDER BY ?s"
    )
    total = len(AWKWARD) * 3
    body = store.query(query).serialize(format=_FORMATS[media])
    for cap in (0, 1, 5, total - 1):
        cut, rows, truncated = _cap_rows(body, media, cap)
        assert (rows, truncated) == (cap, True)
        assert _parse(cut, media) == _parse(body, media)[:cap]
    for cap in (total, total + 10):
        same, rows, truncated = _cap_rows(body, media, cap)
        assert (same, rows, truncated) == (body, total, False)


@pytest.mark.parametrize("media", MEDIA)
def test_native_writer_matches_the_row_writer(media: str) -> None:
    store = _store(AWKWARD)
    query = "SELECT ?s ?o WHERE { ?s ?p ?o } ORDER BY ?s"
    native, rows, truncated = serialise_solutions(
        store.query(query), media, 1000, time.monotonic() + 30
    )
    table = read_solutions(store.query(query), 1000, time.monotonic() + 30)
    assert (rows, truncated) == (len(AWKWARD), False)
    assert _parse(native, media) == _parse(write(table, media), media)


def test_native_writer_stops_at_the_deadline() -> None:
    store = _store([f"v{i}" for i in range(50)])
    with pytest.raises(QueryTimeout):
        serialise_solutions(
            store.query("SELECT * { ?a ?b ?c . ?d ?e ?f . ?g ?h ?i }"),
            "application/sparql-results+json",
            10**9,
            time.monotonic() - 1,
        )


# --- helpers -----------------------------------------------------------------------------------

_FORMATS = {
    "application/sparql-results+json": ox.QueryResultsFormat.JSON,
    "application/sparql-results+xml": ox.QueryResultsFormat.XML,
    "text/csv": ox.QueryResultsFormat.CSV,
    "text/tab-separated-values": ox.QueryResultsFormat.TSV,
}


def _store(texts: list[str]) -> ox.Store:
    store = ox.Store()
    for i, text in enumerate(texts):
        lang = "en" if i % 3 == 0 else None
        store.add(
            ox.Quad(
                ox.NamedNode(f"http://e/s{i:03d}"),
                ox.NamedNode("http://e/p"),
                ox.Literal(text, language=lang) if lang else ox.Literal(text),
            )
        )
    return store


def _parse(body: bytes, media: str) -> list:
    """The rows of a results document, as comparable values (format-specific, order kept)."""
    if media == "application/sparql-results+json":
        return orjson.loads(body)["results"]["bindings"]
    if media == "application/sparql-results+xml":
        root = ET.fromstring(body)
        return [
            sorted((b.get("name"), ET.tostring(b)) for b in result)
            for result in root.iter(f"{RES}result")
        ]
    if media == "text/csv":
        return list(csv.reader(io.StringIO(body.decode(), newline="")))[1:]
    return body.decode().split("\n")[1:-1]
