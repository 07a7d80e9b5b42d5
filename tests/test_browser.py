"""The landing page in a real Chromium."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.browser


def test_landing_page_leads_to_working_api_docs(page: Any, base_url: str) -> None:
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(base_url + "/")
    assert page.title() == "strato"
    assert page.locator("header .brand").inner_text().strip() == "strato"
    page.get_by_role("link", name="API documentation").click()
    page.wait_for_url("**/docs")
    # Swagger UI renders only if its scripts, served by strato itself, loaded and ran.
    title = page.locator(".swagger-ui .info .title")
    title.wait_for(timeout=15000)
    assert "strato" in title.inner_text()
    assert page.locator(".opblock-summary-path", has_text="/api/tokens").count() >= 1
    assert errors == []
