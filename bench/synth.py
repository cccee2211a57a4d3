"""Synthetic building dataset (BOT topology, props values, QUDT-like quantities, SOSA observations).

Deterministic for a given seed and size; writes N-Triples. `python -m bench.synth OUT --triples N`.
"""

from __future__ import annotations

import argparse
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path

BOT = "https://w3id.org/bot#"
BEO = "https://pi.pauwel.be/voc/buildingelement#"
PROPS = "https://w3id.org/props#"
QUDT = "http://qudt.org/schema/qudt/"
UNIT = "http://qudt.org/vocab/unit/"
SOSA = "http://www.w3.org/ns/sosa/"
RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
RDFS_LABEL = "http://www.w3.org/2000/01/rdf-schema#label"
XSD = "http://www.w3.org/2001/XMLSchema#"
QK = "http://qudt.org/vocab/quantitykind/"

WALLS_PER_SPACE = 4
OBSERVATIONS_PER_SENSOR = 6


@dataclass
class Summary:
    """What was generated: counts, plus IRIs the benchmarks rotate over."""

    triples: int = 0
    buildings: list[str] = field(default_factory=list)
    spaces: list[str] = field(default_factory=list)
    walls: list[str] = field(default_factory=list)


def generate(
    out: Path, base_iri: str, triples: int = 1_000_000, seed: int = 42, keep: int = 5000
) -> Summary:
    """Write about `triples` triples (whole buildings, so slightly more) to `out`; same seed, same bytes."""
    rng = random.Random(seed)
    base = base_iri.rstrip("/") + "/id/"
    summary = Summary()
    lines: list[str] = []
    with open(out, "w", encoding="utf-8", newline="\n") as fh:
        b = 0
        while summary.triples < triples:
            lines.clear()
            _building(lines, rng, base, b, summary, keep)
            summary.triples += len(lines)
            fh.write("".join(lines))
            b += 1
    return summary


def _iri(value: str) -> str:
    return f"<{value}>"


def _lit(value: object, dtype: str) -> str:
    return f'"{value}"^^<{XSD}{dtype}>'


def _str(value: str) -> str:
    return f'"{value}"'


def _building(
    lines: list[str], rng: random.Random, base: str, b: int, summary: Summary, keep: int
) -> None:
    """One building with its storeys, spaces, walls, sensors and observations."""

    def t(s: str, p: str, o: str) -> None:
        lines.append(f"{s} {p} {o} .\n")

    a = _iri(RDF_TYPE)
    label = _iri(RDFS_LABEL)
    building = f"{base}building/{b}"
    bi = _iri(building)
    summary.buildings.append(building)
    t(bi, a, _iri(BOT + "Building"))
    t(bi, label, _str(f"Building {b}"))
    t(bi, _iri(PROPS + "yearOfConstruction"), _lit(rng.randint(1900, 2024), "integer"))
    t(bi, _iri(PROPS + "postalCode"), _str(f"{rng.randint(1000, 9999)} {_letters(rng)}"))
    for s in range(rng.randint(2, 8)):
        storey = _iri(f"{base}storey/{b}-{s}")
        t(bi, _iri(BOT + "hasStorey"), storey)
        t(storey, a, _iri(BOT + "Storey"))
        t(storey, label, _str(f"Building {b} storey {s}"))
        t(storey, _iri(PROPS + "elevation"), _lit(f"{s * 3.1:.2f}", "decimal"))
        for p in range(rng.randint(4, 12)):
            local = f"{b}-{s}-{p}"
            space_iri = f"{base}space/{local}"
            space = _iri(space_iri)
            if len(summary.spaces) < keep:
                summary.spaces.append(space_iri)
            t(storey, _iri(BOT + "hasSpace"), space)
            t(space, a, _iri(BOT + "Space"))
            t(space, label, _str(f"Space {local}"))
            t(space, _iri(PROPS + "netFloorArea"), _lit(f"{rng.uniform(6, 80):.2f}", "decimal"))
            power = f"_:hp{local.replace('-', 'x')}"
            t(space, _iri(PROPS + "heatingPower"), power)
            t(power, a, _iri(QUDT + "QuantityValue"))
            t(power, _iri(QUDT + "numericValue"), _lit(f"{rng.uniform(0.5, 6):.3f}", "decimal"))
            t(power, _iri(QUDT + "unit"), _iri(UNIT + "KiloW"))
            for w in range(WALLS_PER_SPACE):
                wall_iri = f"{base}wall/{local}-{w}"
                wall = _iri(wall_iri)
                if len(summary.walls) < keep:
                    summary.walls.append(wall_iri)
                t(space, _iri(BOT + "adjacentElement"), wall)
                t(wall, a, _iri(BOT + "Element"))
                t(wall, a, _iri(BEO + "Wall"))
                t(wall, label, _str(f"Wall {local}-{w}"))
                t(wall, _iri(PROPS + "isExternal"), _lit(str(w == 0).lower(), "boolean"))
                t(
                    wall,
                    _iri(PROPS + "thermalTransmittance"),
                    _lit(f"{rng.uniform(0.15, 2.5):.3f}", "decimal"),
                )
                t(wall, _iri(PROPS + "width"), _lit(rng.choice((100, 150, 200, 300)), "integer"))
            sensor = _iri(f"{base}sensor/{local}")
            t(space, _iri(BOT + "containsElement"), sensor)
            t(sensor, a, _iri(SOSA + "Sensor"))
            t(sensor, _iri(SOSA + "observes"), _iri(QK + "Temperature"))
            for k in range(OBSERVATIONS_PER_SENSOR):
                obs = _iri(f"{base}observation/{local}-{k}")
                t(obs, a, _iri(SOSA + "Observation"))
                t(obs, _iri(SOSA + "madeBySensor"), sensor)
                t(obs, _iri(SOSA + "hasFeatureOfInterest"), space)
                t(obs, _iri(SOSA + "observedProperty"), _iri(QK + "Temperature"))
                t(
                    obs,
                    _iri(SOSA + "resultTime"),
                    _lit(f"2024-01-01T{k * 4:02d}:00:00Z", "dateTime"),
                )
                t(
                    obs,
                    _iri(SOSA + "hasSimpleResult"),
                    _lit(f"{rng.gauss(20.5, 1.5):.2f}", "decimal"),
                )


def _letters(rng: random.Random) -> str:
    return "".join(rng.choice("ABCDEFGHJKLMNPRSTVWXZ") for _ in range(2))


def main(argv: list[str] | None = None) -> int:
    """CLI: write the dataset and print the triple count."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("out", type=Path)
    p.add_argument("--triples", type=int, default=1_000_000)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--base-iri", default="http://127.0.0.1:8100")
    args = p.parse_args(argv)
    summary = generate(args.out, args.base_iri, args.triples, args.seed)
    print(f"{args.out}: {summary.triples} triples, {len(summary.buildings)} buildings")
    return 0


if __name__ == "__main__":
    sys.exit(main())
