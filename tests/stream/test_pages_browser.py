"""The streams page in a real Chromium, against a real control server inside the web app:
a session made through the gRPC client appears without a reload, its bytes grow while
data flows through its listener, a rate is shown, and its release button (the
confirmation given) removes it and gives its ports back."""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from strato.stream.dataserver.base import Address
from tests.stream.support import server
from tests.stream.test_pages import Node, address, listening, open_session, stream_node

pytestmark = pytest.mark.browser
PORTS = (62600, 62609)


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    with stream_node(tmp_path, PORTS) as served:
        yield served


def as_user(browser: Any, node: Node, who: str) -> Any:
    """A page whose every request, its script's fetches included, carries ``who``'s
    token; a confirmation asked is given; script errors are kept."""
    context = browser.new_context(extra_http_headers=node.auth(who))
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.errors = errors
    return page


class Feeder:
    """One connection through a listener to an echo target, sending a chunk whenever
    asked and reading its echo back, so the listener's counters move on demand."""

    def __init__(self, listener: Address) -> None:
        self.sock = socket.create_connection((listener.host, listener.port), timeout=20)
        self.lock = threading.Lock()

    def send(self, size: int) -> None:
        with self.lock:
            data = b"x" * size
            self.sock.sendall(data)
            got = 0
            while got < size:
                chunk = self.sock.recv(1 << 20)
                assert chunk, "the stream closed"
                got += len(chunk)

    def close(self) -> None:
        self.sock.close()


def bytes_in(page: Any, uid: str) -> int:
    cell = page.locator(f'#sessions tbody[data-key="{uid}"] tr.listener >> nth=0 >> td.bytes-in')
    return int(cell.get_attribute("data-value") or 0)


def test_a_session_appears_its_bytes_grow_live_and_release_removes_it(
    browser: Any, node: Node
) -> None:
    page = as_user(browser, node, "ann")
    page.goto(f"{node.url}/streams")
    page.locator("#no-sessions").wait_for()
    page.evaluate("window.sameDocument = true")
    with server("echo") as target:
        uid = open_session(node, "ann", target)
        body = page.locator(f'#sessions tbody[data-key="{uid}"]')
        body.wait_for(timeout=20000)
        assert page.locator("#no-sessions").is_hidden()
        rows = body.locator("tr.listener")
        assert rows.count() == 2
        assert rows.nth(0).locator("td.target").inner_text() == str(target)
        assert body.locator(".state").inner_text() == "forwarding"
        assert body.locator(".owner").inner_text() == "ann"
        listener = address(rows.nth(0).locator("td.listener-address").inner_text())
        ports = [
            address(rows.nth(i).locator("td.listener-address").inner_text()).port for i in (0, 1)
        ]

        feeder = Feeder(listener)
        try:
            seen = 0
            # Bytes sent now show up in the page by its own polling, more each time.
            for _ in range(3):
                feeder.send(512 * 1024)
                page.wait_for_function(
                    "([uid, seen]) => { const c = document.querySelector("
                    "`#sessions tbody[data-key='${uid}'] tr.listener td.bytes-in`);"
                    " return c && Number(c.dataset.value) > seen; }",
                    arg=[uid, seen],
                    timeout=20000,
                )
                now = bytes_in(page, uid)
                assert now > seen
                seen = now
            assert seen == 3 * 512 * 1024
            assert rows.nth(0).locator("td.connections").inner_text() == "1"
            assert "MiB" in rows.nth(0).locator("td.bytes-in").inner_text()
            # A rate, measured between two of the page's readings while bytes moved.
            feeder.send(512 * 1024)
            rate = rows.nth(0).locator("td.rate-in")
            page.wait_for_function(
                "([uid]) => /[1-9].*\\/s$/.test(document.querySelector("
                "`#sessions tbody[data-key='${uid}'] tr.listener td.rate-in`).textContent)",
                arg=[uid],
                timeout=20000,
            )
            assert re.search(r"[1-9].*/s$", rate.inner_text())
        finally:
            feeder.close()
        assert page.evaluate("window.sameDocument === true"), "the page was reloaded"

        body.get_by_role("button", name="Release").click()
        body.wait_for(state="detached", timeout=20000)
        page.locator("#live", has_text=f"Session {uid} released").wait_for()
        page.locator("#no-sessions").wait_for()
        assert node.serving.sessions.get(uid) is None
        assert node.serving.sessions.pool.reserved == 0
        assert not any(listening(p) for p in ports)
        # Later polls do not bring it back.
        page.wait_for_timeout(1500)
        assert page.locator(f'#sessions tbody[data-key="{uid}"]').count() == 0
    assert page.evaluate("window.sameDocument === true")
    assert page.errors == []


def test_another_users_session_stays_hidden_and_the_administrator_releases_it(
    browser: Any, node: Node
) -> None:
    with server("echo") as target:
        bobs = open_session(node, "bob", target, num_conn=1)
        page = as_user(browser, node, "ann")
        page.goto(f"{node.url}/streams")
        page.locator("#no-sessions").wait_for()
        anns = open_session(node, "ann", target, num_conn=1)
        page.locator(f'#sessions tbody[data-key="{anns}"]').wait_for(timeout=20000)
        assert page.locator(f'#sessions tbody[data-key="{bobs}"]').count() == 0
        # The administrator sees both, and whose each is, and releases bob's.
        admin = as_user(browser, node, "admin")
        admin.goto(f"{node.url}/streams")
        for uid, owner in ((anns, "ann"), (bobs, "bob")):
            shown = admin.locator(f'#sessions tbody[data-key="{uid}"] .owner')
            assert shown.inner_text() == owner
        bob = admin.locator(f'#sessions tbody[data-key="{bobs}"]')
        bob.get_by_role("button", name="Release").click()
        bob.wait_for(state="detached", timeout=20000)
        assert node.serving.sessions.get(bobs) is None
        assert node.serving.sessions.get(anns) is not None
        assert page.locator(f'#sessions tbody[data-key="{anns}"]').is_visible()
        assert page.errors == []
        assert admin.errors == []
