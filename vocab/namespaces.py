"""Every namespace the node writes or reads, in one place (trust/, node/ and connectors/ import
these). Constants are plain strings; append a local name: `PROV + "Entity"`."""

from __future__ import annotations

__all__ = [
    "LANGUAGE",
    "FILE_TYPE",
    "ENTAILMENT",
    "FORMATS",
    "IANA",
    "GSP",
    "BAG_DEF",
    "BAG_ID",
    "BAG_PAND",
    "BEO",
    "BOT",
    "DCAT",
    "DCT",
    "DSGO",
    "EPSG",
    "FOAF",
    "FURN",
    "GEO",
    "IFC_CLASS",
    "ODRL",
    "PROPS",
    "PROV",
    "QUDT",
    "RDF",
    "RDFS",
    "RDF_TYPE",
    "SD",
    "SH",
    "SOSA",
    "UNIT",
    "VCARD",
    "VOID",
    "XSD",
]

# W3C
RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
RDFS = "http://www.w3.org/2000/01/rdf-schema#"
XSD = "http://www.w3.org/2001/XMLSchema#"
SH = "http://www.w3.org/ns/shacl#"
PROV = "http://www.w3.org/ns/prov#"
DCAT = "http://www.w3.org/ns/dcat#"
ODRL = "http://www.w3.org/ns/odrl/2/"
SOSA = "http://www.w3.org/ns/sosa/"
SD = "http://www.w3.org/ns/sparql-service-description#"
VCARD = "http://www.w3.org/2006/vcard/ns#"
GEO = "http://www.w3.org/2003/01/geo/wgs84_pos#"
# community vocabularies
DCT = "http://purl.org/dc/terms/"
FOAF = "http://xmlns.com/foaf/0.1/"
VOID = "http://rdfs.org/ns/void#"
QUDT = "http://qudt.org/schema/qudt/"
UNIT = "http://qudt.org/vocab/unit/"
EPSG = "http://www.opengis.net/def/crs/EPSG/0/"
GSP = "http://www.opengis.net/ont/geosparql#"
IANA = "https://www.iana.org/assignments/media-types/"
FORMATS = "http://www.w3.org/ns/formats/"
ENTAILMENT = "http://www.w3.org/ns/entailment/"
# EU Publications Office authority tables (DCAT-AP)
FILE_TYPE = "http://publications.europa.eu/resource/authority/file-type/"
LANGUAGE = "http://publications.europa.eu/resource/authority/language/"
# the built environment (W3C LBD CG, buildingSMART, the Dutch BAG)
BOT = "https://w3id.org/bot#"
PROPS = "https://w3id.org/props#"
BEO = "https://pi.pauwel.be/voc/buildingelement#"
FURN = "http://pi.pauwel.be/voc/furniture#"
IFC_CLASS = "https://identifier.buildingsmart.org/uri/buildingsmart/ifc/4.3/class/"
BAG_ID = "https://bag.basisregistraties.overheid.nl/id/"
BAG_DEF = "https://bag.basisregistraties.overheid.nl/def/bag#"
BAG_PAND = BAG_ID + "pand/"
# this node's own terms (vocab/dsgo.ttl)
DSGO = "https://w3id.org/dsgo-node/def#"

RDF_TYPE = RDF + "type"
