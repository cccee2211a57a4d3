"""BAG 2.0 XML extract (panden, verblijfsobjecten, nummeraanduidingen) -> versioned BAG RDF."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path

from connectors import ntriples as nt
from connectors.base import ConnectorResult
from connectors.errors import ConnectorError
from connectors.fingerprints import file_prov, require_file, utc_now
from vocab.namespaces import BAG_DEF, BAG_ID, DSGO

NAME = "bag"
VERSION = "1.0.0"

OBJ = "{www.kadaster.nl/schemas/lvbag/imbag/objecten/v20200601}"
HIST = "{www.kadaster.nl/schemas/lvbag/imbag/historie/v20200601}"
REF = "{www.kadaster.nl/schemas/lvbag/imbag/objecten-ref/v20200601}"
NEN3610_ID = "<http://modellen.geostandaarden.nl/def/nen3610#identificatie>"
PROV_SPEC = "<http://www.w3.org/ns/prov#specializationOf>"
RDF_TYPE = "<http://www.w3.org/1999/02/22-rdf-syntax-ns#type>"

# XML element -> (IRI path segment, bag: class)
_OBJECTS = {
    "Pand": ("pand", "Pand"),
    "Verblijfsobject": ("verblijfsobject", "Verblijfsobject"),
    "Nummeraanduiding": ("nummeraanduiding", "Nummeraanduiding"),
}
# child element -> (predicate IRI, datatype or None for plain string)
_FIELDS = {
    "oorspronkelijkBouwjaar": (f"{DSGO}oorspronkelijkBouwjaar", "xsd:gYear"),
    "status": (f"{DSGO}status", None),
    "gebruiksdoel": (f"{DSGO}gebruiksdoel", None),
    "oppervlakte": (f"{DSGO}oppervlakte", "xsd:integer"),
    "documentdatum": (f"{DSGO}documentdatum", "xsd:date"),
    "documentnummer": (f"{DSGO}documentnummer", None),
    "huisnummer": (f"{BAG_DEF}huisnummer", "xsd:integer"),
    "huisletter": (f"{BAG_DEF}huisletter", None),
    "huisnummertoevoeging": (f"{BAG_DEF}huisnummertoevoeging", None),
    "postcode": (f"{BAG_DEF}postcode", None),
    "typeAdresseerbaarObject": (f"{DSGO}typeAdresseerbaarObject", None),
}
_HISTORY = {
    "beginGeldigheid": (f"{DSGO}beginGeldigheid", "xsd:date"),
    "eindGeldigheid": (f"{DSGO}eindGeldigheid", "xsd:date"),
    "tijdstipRegistratie": (f"{DSGO}tijdstipRegistratie", "xsd:dateTime"),
    "eindRegistratie": (f"{DSGO}eindRegistratie", "xsd:dateTime"),
}
# reference element -> (predicate IRI, referenced object path segment)
_REFS = {
    "heeftAlsHoofdadres": (f"{BAG_DEF}heeftAlsHoofdadres", "nummeraanduiding"),
    "heeftAlsNevenadres": (f"{DSGO}heeftAlsNevenadres", "nummeraanduiding"),
    "maaktDeelUitVan": (f"{DSGO}maaktDeelUitVan", "pand"),
    "ligtAan": (f"{BAG_DEF}ligtAan", "openbareruimte"),
    "ligtIn": (f"{BAG_DEF}ligtIn", "woonplaats"),
}


class BagConnector:
    """Each voorkomen becomes ``{base}/id/bag/{kind}/{id}/{n}``, prov:specializationOf its object."""

    name = NAME
    version = VERSION

    def run(
        self,
        source: str,
        *,
        base_iri: str,
        dataset: str,
        party_id: str,
        mapping: Path | None = None,
        workdir: Path,
        options: Mapping[str, str] | None = None,
    ) -> ConnectorResult:
        """Convert one extract file; several files (PND, VBO, NUM) are several sources."""
        started = utc_now()
        path = require_file(source)
        out = Path(workdir) / f"{dataset}.nt"
        counts: dict[str, int] = {}
        with nt.NTriplesWriter(out) as writer:
            objects: set[str] = set()
            versions: set[str] = set()
            for index, element in enumerate(_objects(path), start=1):
                kind = _write_version(
                    element, index, base_iri.rstrip("/"), writer, str(path), versions
                )
                counts[kind] = counts.get(kind, 0) + 1
                ident = element.findtext(f"{OBJ}identificatie", "").strip()
                obj = f"<{BAG_ID}{_OBJECTS[kind][0]}/{ident}>"
                if obj not in objects:
                    objects.add(obj)
                    writer.triple(obj, RDF_TYPE, f"<{BAG_DEF}{_OBJECTS[kind][1]}>")
                    writer.triple(obj, NEN3610_ID, nt.literal(ident))
        extra = {f"versions_{k.lower()}": str(v) for k, v in sorted(counts.items())}
        prov = file_prov(
            path, connector=NAME, version=VERSION, started=started, party_id=party_id, extra=extra
        )
        return ConnectorResult(prov=prov, ntriples_path=out, triple_count=writer.count)


def _objects(path: Path):
    """Yield each Pand/Verblijfsobject/Nummeraanduiding element as it is parsed, then free it."""
    try:
        for _event, element in ET.iterparse(path, events=("end",)):
            if element.tag.startswith(OBJ) and element.tag[len(OBJ) :] in _OBJECTS:
                yield element
                element.clear()
    except ET.ParseError as exc:
        line, column = exc.position
        raise ConnectorError(
            str(path), f"line {line}, column {column}", f"bad XML: {exc}"
        ) from None


def _write_version(
    element: ET.Element, index: int, base: str, w: nt.NTriplesWriter, src: str, seen: set[str]
) -> str:
    kind = element.tag[len(OBJ) :]
    segment = _OBJECTS[kind][0]
    position = f"{kind} record {index}"
    ident = element.findtext(f"{OBJ}identificatie", "").strip()
    if not ident.isdigit() or len(ident) != 16:
        raise ConnectorError(src, position, f"identificatie {ident!r} is not a 16-digit BAG id")
    history = element.find(f"{OBJ}voorkomen/{HIST}Voorkomen")
    number = (
        history.findtext(f"{HIST}voorkomenidentificatie", "").strip() if history is not None else ""
    )
    if not number.isdigit():
        raise ConnectorError(
            src, f"{position} ({ident})", "voorkomen has no voorkomenidentificatie"
        )
    local = f"{segment}/{ident}/{number}"
    if local in seen:  # extracts can repeat a version number: later records get -2, -3, ...
        k = 2
        while f"{local}-{k}" in seen:
            k += 1
        local = f"{local}-{k}"
    seen.add(local)
    version = nt.iri(f"{base}/id/bag/{local}")
    w.triple(version, RDF_TYPE, f"<{DSGO}BagVersion>")
    w.triple(version, PROV_SPEC, f"<{BAG_ID}{segment}/{ident}>")
    w.triple(version, f"<{DSGO}bagId>", nt.literal(ident))
    w.triple(version, f"<{DSGO}versionNumber>", nt.integer(int(number)))
    for child, (predicate, datatype) in _FIELDS.items():
        text = element.findtext(f"{OBJ}{child}")
        if text and text.strip():
            w.triple(version, f"<{predicate}>", nt.literal(text.strip(), datatype))
    geconstateerd = element.findtext(f"{OBJ}geconstateerd")
    if geconstateerd in ("J", "N"):
        w.triple(version, f"<{DSGO}geconstateerd>", nt.boolean(geconstateerd == "J"))
    for child, (predicate, datatype) in _HISTORY.items():
        text = history.findtext(f"{HIST}{child}")
        if text and text.strip():
            w.triple(version, f"<{predicate}>", nt.literal(text.strip(), datatype))
    for child, (predicate, target) in _REFS.items():
        holder = element.find(f"{OBJ}{child}")
        if holder is None:
            continue
        for ref in holder:
            if ref.tag.startswith(REF) and (ref.text or "").strip():
                w.triple(version, f"<{predicate}>", f"<{BAG_ID}{target}/{ref.text.strip()}>")
    return kind
