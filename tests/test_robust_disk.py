"""Issue 17: a full disk, for real: the node's directory on a small tmpfs, filled up.

"No space left" is a JSON 507 (or the audit log's 503), never a 500 and never a 400, at the
token endpoint, an admin upload (spool) and a bulk load (RocksDB); the failed load leaves no
`*.upload` or `bulk-*.sst` behind; leftovers of a killed load are removed at start-up; /readyz
reports low disk (node.min_free_mb). Skipped where tmpfs cannot be mounted (needs root).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from nodeproc import ProcessGroup, edit_config, free_port, init_node, token_for, trust_client

OWNER = "EU.EORI.NL000000177"
SIZE_MB = 48


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={SIZE_MB}m", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(mount: Path, leave: int) -> Path:
    """Take all free space on the mount but about `leave` bytes (the node writes meanwhile)."""
    filler = mount / "filler"
    filler.unlink(missing_ok=True)
    with open(filler, "wb", buffering=0) as fh:
        size = max(shutil.disk_usage(mount).free - leave, 0)
        while size > 0:
            try:
                os.posix_fallocate(fh.fileno(), 0, size)
                break
            except OSError:  # something else wrote in between: a little less
                size -= 64 * 1024
        if leave == 0:  # top up to the last block
            try:
                while True:
                    fh.write(b"\0" * 4096)
            except OSError:
                pass
    return filler


def _ntriples(n: int) -> bytes:
    return "".join(
        f'<http://example.org/s{i}> <http://example.org/p{i % 7}> "value {i}" .\n' for i in range(n)
    ).encode()


def _leftovers(data: Path) -> list[str]:
    return sorted(
        str(p.relative_to(data)) for p in [*data.glob("*.upload"), *data.glob("store/bulk-*.sst")]
    )


def _refused_for_space(resp: httpx.Response) -> None:
    assert resp.status_code in (503, 507), (resp.status_code, resp.text)
    body = resp.json()
    expected = {503: "audit_unavailable", 507: "insufficient_storage"}[resp.status_code]
    assert body["error"] == expected, body


def test_full_disk_is_507_not_500_or_400_and_leaves_nothing(
    procs: ProcessGroup, disk: Path
) -> None:
    port = free_port()
    config = init_node(disk / "node", OWNER, "Owner", port)
    edit_config(config, {"node": {"min_free_mb": 2}, "log": {"requests": False}})
    data = disk / "node" / "data"
    proc = procs.serve(config, port)
    proc.stop()
    procs.procs.remove(proc)
    # A killed load's leftovers: removed when the node starts.
    (data / "killed.upload").write_bytes(b"x" * 4096)
    (data / "store" / "bulk-1234567890.sst").write_bytes(b"x" * 4096)
    proc = procs.serve(config, port)
    assert _leftovers(data) == []
    http = httpx.Client(base_url=proc.base_url, timeout=60)
    owner = {"Authorization": f"Bearer {token_for(config, proc.base_url)}"}
    assert http.get("/readyz").status_code == 200
    put = "/admin/datasets/big"
    nt = {**owner, "Content-Type": "application/n-triples"}

    # 1. The spool fits, the bulk load's files do not: a 507 from the store, not a 400.
    body = _ntriples(60_000)
    filler = _fill(disk, leave=len(body) + len(body) // 4)
    resp = http.put(put, content=body, headers=nt)
    _refused_for_space(resp)
    assert resp.status_code == 507 and "loading" in resp.json()["error_description"]
    assert resp.headers["retry-after"]
    assert _leftovers(data) == []

    # 2. The spool itself does not fit: 507, and the spool file is gone.
    _fill(disk, leave=128 * 1024)
    resp = http.put(put, content=_ntriples(30_000), headers=nt)
    _refused_for_space(resp)
    print("spool:", resp.status_code, resp.json()["error_description"])
    assert _leftovers(data) == []

    # 3. Nothing left at all: the token endpoint, a read, /readyz.
    _fill(disk, leave=0)
    client = trust_client(config)
    tokens = [http.post("/connect/token", data=client.token_form(OWNER)) for _ in range(5)]
    for resp in tokens:
        _refused_for_space(resp)
    # The replay cache (SQLite) is written first: "database or disk is full" is the named 507.
    assert 507 in {r.status_code for r in tokens}
    ready = http.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"]["disk"]["ok"] is False
    assert "node.min_free_mb" in ready.json()["checks"]["disk"]["detail"]
    assert http.get("/healthz").status_code == 200

    # 4. Room again: the same requests succeed.
    filler.unlink()
    assert http.post("/connect/token", data=client.token_form(OWNER)).status_code == 200
    resp = http.put(put, content=_ntriples(2_000), headers=nt)
    assert resp.status_code == 200, resp.text
    assert resp.json()["triples"] == 2_000
    assert http.get("/readyz").status_code == 200
    assert _leftovers(data) == []
    http.close()
