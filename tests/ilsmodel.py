"""The example permit-check models (examples/make_ils_model.py), built once per test run.

Building the ILS-ready duplex and its fixed revision takes 15 to 20 s of CPU, and four test
modules need them. The first worker that asks builds both into the run's shared temporary
directory (a file lock keeps the other xdist workers waiting); the others copy them.
tests/test_ids_check_ils.py still builds the model itself to show the build is reproducible.
"""

from __future__ import annotations

import fcntl
import importlib.util
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "examples" / "make_ils_model.py"
DUPLEX = ROOT / "examples" / "data" / "duplex.ifc"


@dataclass
class IlsModels:
    built: Path  # examples/make_ils_model.py build: the model as submitted, with its mistakes
    fixed: Path  # ... fix on it: the revision
    steps: list[tuple[str, str, int]]  # the script's logged steps (build, then fix)


def script() -> ModuleType:
    """examples/make_ils_model.py as a module."""
    spec = importlib.util.spec_from_file_location("make_ils_model", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def ils_models(factory: pytest.TempPathFactory, into: Path) -> IlsModels:
    """Copies of the built and fixed models in `into` (a test's own directory) and the steps."""
    shared = factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        shared = shared.parent  # the run's directory, above each worker's own
    cache = shared / "ils-models"
    cache.mkdir(exist_ok=True)
    built, fixed, steps = cache / "duplex-ils.ifc", cache / "duplex-ils-fixed.ifc", cache / "steps"
    with open(cache / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not steps.exists():
            module = script()
            log = module.Log(quiet=True)
            module.build(DUPLEX, built, log)
            module.fix(built, fixed, log)
            steps.write_text(json.dumps(log.rows), encoding="utf-8")
    into.mkdir(parents=True, exist_ok=True)
    copies = IlsModels(into / built.name, into / fixed.name, [])
    shutil.copyfile(built, copies.built)
    shutil.copyfile(fixed, copies.fixed)
    copies.steps = [tuple(row) for row in json.loads(steps.read_text(encoding="utf-8"))]
    return copies
