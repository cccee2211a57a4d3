"""A person logs in with a real browser: headless Debian Chromium driven by playwright-python,
through the real development OpenID Provider, onto a real node; then logs out.

Uses the system Chromium (/usr/bin/chromium; .ci/run installs it): playwright's own browser
download is never used. Screenshots go to tests/out/ (not committed).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from loginflow import RENOVATOR, LoginNode, start_login_node
from nodeproc import ProcessGroup

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
OUT = Path(__file__).parent / "out"

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright-python is not installed")
pytestmark = [
    pytest.mark.timeout(300),
    pytest.mark.skipif(
        not Path(CHROMIUM).exists() and shutil.which("chromium") is None,
        reason="Debian chromium is not installed (.ci/run installs it)",
    ),
]


@pytest.fixture(scope="module")
def node(module_procs: ProcessGroup, tmp_path_factory: pytest.TempPathFactory) -> LoginNode:
    return start_login_node(module_procs, tmp_path_factory.mktemp("browser"))


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium"),
            args=FLAGS,
            headless=True,
        )
        try:
            yield chromium
        finally:
            chromium.close()


def test_a_person_logs_in_sees_who_they_are_and_logs_out(node: LoginNode, browser) -> None:
    OUT.mkdir(exist_ok=True)
    context = browser.new_context()
    page = context.new_page()
    outside: list[str] = []
    page.on(
        "request",
        lambda r: outside.append(r.url) if not r.url.startswith("http://127.0.0.1:") else None,
    )
    try:
        page.goto(f"{node.base}/login?next=/login")
        page.screenshot(path=str(OUT / "login-1-providers.png"))
        page.get_by_role("link", name="Log in with the development provider", exact=True).click()
        page.wait_for_url(f"{node.op.issuer}/interaction/**")  # type: ignore[attr-defined]
        page.fill("input[name=login]", "rita")
        page.fill("input[name=password]", "demo")
        page.screenshot(path=str(OUT / "login-2-provider.png"))
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(f"{node.base}/login*")
        assert page.locator("[data-person]").inner_text() == "Rita Jansen"
        assert page.locator("[data-party]").inner_text() == RENOVATOR
        page.screenshot(path=str(OUT / "login-3-logged-in.png"))
        cookies = {c["name"]: c for c in context.cookies(node.base)}
        session = next(c for n, c in cookies.items() if n.startswith("dsgo_session_"))
        assert session["httpOnly"] and session["sameSite"] == "Lax"
        assert page.evaluate("document.cookie").find("dsgo_session_") == -1  # HttpOnly
        # the session works on the node's routes as a token does
        catalog = page.goto(f"{node.base}/catalog")
        assert catalog is not None and catalog.status == 200
        page.goto(f"{node.base}/login")
        page.get_by_role("button", name="Log out").click()
        page.wait_for_url(f"{node.base}/login")
        assert page.get_by_role(
            "link", name="Log in with the development provider", exact=True
        ).is_visible()
        page.screenshot(path=str(OUT / "login-4-logged-out.png"))
        after = page.goto(f"{node.base}/login/me")
        assert after is not None and after.status == 401
        assert node.sessions() == 0
        assert outside == [], f"pages loaded from another origin: {outside}"
    finally:
        context.close()
