"""Issue 13: connector errors through the admin API get the CLI's message and a 4xx, not a 500."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from nodeproc import dsgo, free_port, init_node, trust_client
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.testclient import TestClient

from connectors.errors import ShaclValidationError
from node.app import _HANDLERS

DATA = Path(__file__).parent / "data" / "ifc"
OWNER = "EU.EORI.NL000000301"


def test_running_node_answers_connector_errors_with_their_reason(tmp_path, procs) -> None:
    port = free_port()
    config = init_node(tmp_path / "n", OWNER, "Owner", port)
    node = procs.serve(config, port)
    rc2 = tmp_path / "road.ifc"
    shutil.copyfile(DATA / "KIT-Simple-Road-Test-Web-IFC4x3_RC2.ifc", rc2)
    broken = tmp_path / "broken.ifc"
    broken.write_text("ISO-10303-21;\nHEADER;\nthis is not a model\n")
    client = trust_client(config)
    cases = [
        ({"kind": "ifc", "source": str(tmp_path / "missing.ifc")}, 400, "source file not found"),
        ({"kind": "ifc", "source": str(broken)}, 400, "not a readable IFC-SPF model"),
        ({"kind": "ifc", "source": str(rc2)}, 415, "IFC4X3_RC2"),
        ({"kind": "nope", "source": str(rc2)}, 400, "unknown connector kind"),
    ]
    for body, status, text in cases:
        resp = client.request(
            "POST", node.base_url, "/admin/connect", json={**body, "dataset": "bim"}
        )
        assert resp.status_code == status, (body, resp.text)
        assert text in resp.json()["error_description"], resp.text
        cli = dsgo(
            "connect",
            body["kind"],
            body["source"],
            "--dataset",
            "bim",
            "--config",
            config,
            check=False,
        )
        assert cli.returncode == 1 and text in cli.stderr and "Traceback" not in cli.stderr
        assert f"HTTP {status}" in cli.stderr  # it went through the running node
    # the node's request log (one JSON line per request): no answer was a 5xx
    logged = [json.loads(line) for line in node.stderr.splitlines() if line.startswith("{")]
    assert logged and all(entry["status"] < 500 for entry in logged), node.stderr
    assert "Traceback" not in node.stderr


def test_shacl_failure_is_422_with_the_first_violations() -> None:
    def fail(request):
        raise ShaclValidationError("model.ifc", "ifc", ["Violation at <urn:x>: no class"], 7)

    app = Starlette(routes=[Route("/x", fail)], exception_handlers=_HANDLERS)
    resp = TestClient(app).get("/x")
    assert resp.status_code == 422
    body = resp.json()
    assert body["error"] == "shacl_violation" and body["total"] == 7
    assert body["violations"] == ["Violation at <urn:x>: no class"]
    assert "model.ifc" in body["error_description"]
