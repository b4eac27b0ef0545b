"""The web page in a real browser: Debian's chromium driven by Playwright, against a real
server on 127.0.0.1 (uvicorn in a thread) whose backends are scripted.

Submit a problem, watch the step stream in and the answer appear, then browse the
runs and search the templates; screenshots at desktop and phone widths are saved
in `test-output/browser/`.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from flux_agent.api import create_app, default_app_path
from tests.integration.conftest import serve_in_thread
from tests.unit.api.conftest import SlowBackend, answer_anything, make_service

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
OUTPUT = Path(__file__).resolve().parents[2] / "test-output" / "browser"
PROBLEM = "What is the sum of the roots of $x^2 - 5x + 6 = 0$?"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _browser_or_skip() -> None:
    if not Path(CHROMIUM).exists():
        message = "Debian chromium is not installed (apt-get install chromium)"
        if os.environ.get("FLUX_REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture
def server(tmp_path, keyword_store, sandbox) -> Iterator[str]:
    # Each reply takes a moment, so the page visibly streams instead of jumping to the end.
    service = make_service(
        tmp_path,
        keyword_store,
        sandbox,
        navigator=SlowBackend(answer_anything, delay=0.3),
        solver=SlowBackend(answer_anything, delay=0.3),
    )
    with serve_in_thread(create_app(service)) as base:
        yield base


def test_solve_runs_and_templates_in_the_browser(server: str) -> None:
    _browser_or_skip()
    from playwright.sync_api import expect, sync_playwright

    OUTPUT.mkdir(parents=True, exist_ok=True)
    console_errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on(
                "console", lambda m: console_errors.append(m.text) if m.type == "error" else None
            )
            page.goto(server)
            page.fill("#problem", PROBLEM)
            page.click("#solve-button")

            step = page.locator('.step-card[data-step="0"]')
            expect(step.locator(".step-text")).to_contain_text("By Vieta", timeout=20_000)
            expect(page.locator("#answer .answer-value")).to_have_text("5", timeout=20_000)
            expect(step.locator(".check-badge")).to_contain_text("verified")
            expect(page.locator("#run-id")).not_to_be_empty()
            if (default_app_path() / "vendor" / "katex" / "katex.min.js").exists():
                # LaTeX in the problem is typeset by the vendored KaTeX.
                expect(page.locator("#trajectory .katex").first).to_be_visible()
            page.screenshot(path=OUTPUT / "solve-desktop.png", full_page=True)
            page.set_viewport_size({"width": 390, "height": 844})
            page.screenshot(path=OUTPUT / "solve-phone.png", full_page=True)
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, f"the phone layout scrolls sideways ({width} px wide)"
            page.set_viewport_size({"width": 1280, "height": 900})

            page.click("#tab-runs")
            row = page.locator(".run-row").first
            expect(row).to_contain_text("5", timeout=10_000)
            row.click()
            detail = page.locator("#run-detail")
            expect(detail.locator(".answer-value")).to_have_text("5", timeout=10_000)
            expect(detail.locator('.step-card[data-step="0"] .step-text')).to_contain_text("Vieta")
            page.screenshot(path=OUTPUT / "runs.png", full_page=True)

            page.click("#tab-templates")
            page.fill("#template-query", "sum of the roots of a quadratic")
            card = page.locator(".template-card").first
            expect(card).to_contain_text("Vieta", timeout=10_000)
            page.screenshot(path=OUTPUT / "templates.png", full_page=True)
        finally:
            browser.close()
    assert not console_errors, console_errors
