"""The catalog's web pages in a real Chromium: facets, text search, paging, items, activity."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from strato.catalog.demo.generator import generate_items
from strato.catalog.ingest.apply import apply_events
from strato.catalog.model.events import create_event, replication_event
from tests.catalog.test_esg_search import WHO, Node, counts, matching, node_settings, start_node

pytestmark = pytest.mark.browser


@pytest.fixture
def node(tmp_path: Path, serve: Callable[[Any], str]) -> Iterator[Node]:
    yield from start_node(node_settings(tmp_path), serve)


def shown_count(page: Any) -> int:
    text = page.locator("#result-count").inner_text()
    found = re.search(r"of (\d+)", text)
    assert found, text
    return int(found.group(1))


def facet_counts(page: Any, name: str) -> dict[str, int]:
    links = page.locator(f"#facet-{name} a.facet-value")
    out = {}
    for i in range(links.count()):
        link = links.nth(i)
        # text_content, not inner_text: values past the fold are hidden, yet there.
        out[link.get_attribute("data-value")] = int(link.locator(".count").text_content())
    return out


def watch_errors(page: Any) -> list[str]:
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    return errors


def test_facet_clicks_narrow_results_and_counts(page: Any, node: Node) -> None:
    errors = watch_errors(page)
    items = node.items
    page.goto(node.url + "/")
    page.get_by_role("link", name="Catalog", exact=True).first.click()
    page.wait_for_url(re.compile(r"/catalog$"))
    assert shown_count(page) == len(items)
    assert facet_counts(page, "project") == counts(items, "project")
    assert facet_counts(page, "source_id") == counts(items, "source_id")

    cordex = matching(items, project=["CORDEX"])
    page.locator("#facet-project a.facet-value[data-value='CORDEX']").click()
    page.wait_for_url(re.compile(r"/catalog\?project=CORDEX$"))
    assert shown_count(page) == len(cordex)
    assert facet_counts(page, "domain_id") == counts(cordex, "domain_id")
    # The chosen facet still offers its other values, counted as if it were not chosen.
    assert facet_counts(page, "project") == counts(items, "project")
    assert page.locator("#facet-project a.selected").get_attribute("data-value") == "CORDEX"

    domain = max(counts(cordex, "domain_id").items(), key=lambda kv: kv[1])[0]
    page.locator(f"#facet-domain_id a.facet-value[data-value='{domain}']").click()
    page.wait_for_url(re.compile(rf"/catalog\?project=CORDEX&domain_id={domain}$"))
    narrowed = matching(cordex, domain_id=[domain])
    assert shown_count(page) == len(narrowed)
    assert facet_counts(page, "variable_id") == counts(narrowed, "variable_id")
    rows = page.locator("#results tbody tr")
    assert rows.count() == len(narrowed)

    # Clicking a chosen value again takes it away, keeping the other choice.
    page.locator("#facet-project a.facet-value[data-value='CORDEX']").click()
    page.wait_for_url(re.compile(rf"/catalog\?domain_id={domain}$"))
    assert shown_count(page) == len(matching(items, domain_id=[domain]))
    page.locator("#clear-filters").click()
    page.wait_for_url(re.compile(r"/catalog$"))
    assert shown_count(page) == len(items)
    assert errors == []


def test_text_search_keeps_filters_and_says_when_nothing_matches(page: Any, node: Node) -> None:
    errors = watch_errors(page)
    target = node.items[7]
    page.goto(node.url + "/catalog")
    page.get_by_label("Search text").fill(target["id"])
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(re.compile(r"/catalog\?q=CMIP6"))
    ids = page.locator("#results tbody tr td:first-child a").all_inner_texts()
    assert target["id"] in ids
    assert shown_count(page) <= len(node.items)

    page.get_by_label("Search text").fill("zzzz-no-such-thing")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(re.compile(r"/catalog\?q=zzzz"))
    assert "No item matches" in page.locator("#empty").inner_text()
    assert page.locator("#results").count() == 0
    assert errors == []


def test_pagination_walks_every_item_once(page: Any, node: Node) -> None:
    errors = watch_errors(page)
    page.goto(node.url + "/catalog?project=CMIP6")
    total = len(matching(node.items, project=["CMIP6"]))
    pages = -(-total // 20)
    seen: list[str] = []
    for number in range(1, pages + 1):
        assert page.locator("#page-of").inner_text() == f"Page {number} of {pages}"
        seen += page.locator("#results tbody tr td:first-child a").all_inner_texts()
        if number < pages:
            page.get_by_role("link", name="Next →").click()
            page.wait_for_url(re.compile(rf"page={number + 1}$"))
    assert len(seen) == len(set(seen)) == total
    assert page.get_by_role("link", name="Next →").count() == 0
    assert (
        page.locator("#result-count").inner_text()
        == f"Items {20 * (pages - 1) + 1}\u2013{total} of {total}"
    )
    page.get_by_role("link", name="← Previous").click()
    page.wait_for_url(re.compile(rf"page={pages - 1}$"))
    assert page.locator("#page-of").inner_text() == f"Page {pages - 1} of {pages}"
    assert errors == []


def test_item_page_shows_files_replicas_and_links(page: Any, node: Node) -> None:
    errors = watch_errors(page)
    item = next(it for it in node.items[1:] if len(it["assets"]) >= 2)
    key = next(iter(item["assets"]))
    replica = {"href": "https://mirror.example/" + key, "type": "application/netcdf"}
    event = replication_event(
        item["collection"], item["id"], {key: {"mirror": replica}}, requester=WHO
    )
    [outcome] = apply_events(node.store, [event])
    assert outcome.status == "applied"

    page.goto(node.url + "/catalog?" + f"q={quote(item['id'])}")
    page.get_by_role("link", name=item["id"], exact=True).click()
    page.wait_for_url(re.compile(r"/catalog/collections/[^/]+/items/[^/]+$"))
    assert page.locator("h1").inner_text() == item["id"]
    rows = page.locator("#assets tbody tr")
    assert rows.count() == len(item["assets"])
    first = item["assets"][key]
    row = page.locator("#assets tbody tr", has=page.get_by_role("link", name=key, exact=True))
    assert row.get_by_role("link", name=key).get_attribute("href") == first["href"]
    assert first["file:checksum"][4:] in row.inner_text()
    assert row.get_by_role("link", name="mirror").get_attribute("href") == replica["href"]
    props = page.locator("#properties").inner_text()
    assert item["properties"]["base_id"] in props

    stac = page.locator("#stac-link").get_attribute("href")
    assert stac == f"/stac/collections/{item['collection']}/items/{item['id']}"
    assert errors == []
    legacy = httpx.get(node.url + page.locator("#esg-link").get_attribute("href"), timeout=30)
    assert [d["instance_id"] for d in legacy.json()["response"]["docs"]] == [item["id"]]


def test_unknown_item_and_bad_parameters_are_pages_not_tracebacks(node: Node) -> None:
    r = httpx.get(node.url + "/catalog/collections/CMIP6/items/nope", timeout=30)
    assert r.status_code == 404
    assert "text/html" in r.headers["content-type"]
    assert "no item &#39;nope&#39;" in r.text
    # Past the last page: an empty page that says where the items are, not an error.
    r = httpx.get(node.url + "/catalog?page=99", timeout=30)
    assert r.status_code == 200
    assert f"No items on page 99: there are {len(node.items)} in 9 pages" in r.text
    for query, says in [
        ("page=0", "page must be 1 or more"),
        ("page=two", "page is a whole number"),
        ("flavour=sweet", "unknown facet &#39;flavour&#39;"),
    ]:
        r = httpx.get(node.url + "/catalog?" + query, timeout=30)
        assert r.status_code == 400, query
        assert says in r.text, r.text
        assert "Traceback" not in r.text


def test_activity_view_shows_new_events_and_errors_without_reload(page: Any, node: Node) -> None:
    errors = watch_errors(page)
    page.goto(node.url + "/catalog/activity")
    assert page.locator("#applied-total").inner_text() == str(len(node.items))
    # Set on this document: it survives only if the page is never reloaded.
    page.evaluate("window.stillHere = true")

    [fresh] = generate_items(1, seed=99, node="elsewhere")
    fresh["id"] += "-fresh"
    created = create_event(fresh["collection"], fresh, requester=WHO)
    clash = create_event(node.items[2]["collection"], node.items[2], requester=WHO)
    # Outcomes keep whole seconds and the view shows the newest first: in a later second
    # than the fixture's, the two new rows are certain to be among those shown.
    time.sleep(1.1)
    outcomes = apply_events(node.store, [created, clash])
    assert [o.status for o in outcomes] == ["applied", "rejected"]

    new_row = page.locator(f"tr[data-event='{created.metadata.event_id}']")
    new_row.wait_for(timeout=15000)
    assert "applied" in new_row.inner_text()
    assert new_row.get_by_role("link", name=fresh["id"]).count() == 1
    bad_row = page.locator(f"tr[data-event='{clash.metadata.event_id}']")
    bad_row.wait_for(timeout=15000)
    assert "rejected" in bad_row.inner_text()
    assert "already exists" in bad_row.inner_text()
    assert page.locator("#rejected-total").inner_text() == "1"
    assert page.evaluate("window.stillHere") is True

    # Only the errors, still without a reload.
    page.get_by_label("Only rejected events").check()
    page.wait_for_function("document.querySelectorAll('#activity tbody tr').length === 1")
    assert page.locator("#activity tbody tr").get_attribute("data-event") == clash.metadata.event_id
    assert page.evaluate("window.stillHere") is True

    api = httpx.get(node.url + "/api/catalog/activity?limit=1&errors=true", timeout=30).json()
    assert [e["event_id"] for e in api["events"]] == [clash.metadata.event_id]
    assert api["events"][0]["status"] == 409
    assert errors == []


def test_activity_api_checks_its_parameters(node: Node) -> None:
    r = httpx.get(node.url + "/api/catalog/activity?limit=0", timeout=30)
    assert r.status_code == 422
    assert "limit" in r.json()["detail"]
    body = httpx.get(node.url + "/api/catalog/activity?limit=3", timeout=30).json()
    assert len(body["events"]) == 3
    assert body["applied"] == len(node.items)
    assert body["rejected"] == 0
