"""Authentication and scopes over real HTTP."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import Depends

from strato.app import create_app
from strato.auth import Principal, Scope
from strato.context import Context
from strato.http.security import Authenticator
from strato.settings import AuthSettings, Settings
from tests.helpers import assert_problem


def test_admin_token_works_and_wrong_token_is_401(http: httpx.Client, admin_token: str) -> None:
    r = http.get("/api/me", headers={"Authorization": f"Bearer {admin_token}"})
    assert r.status_code == 200
    assert r.json()["user"] == "admin"
    bad = http.get("/api/me", headers={"Authorization": "Bearer strato_wrong"})
    assert_problem(bad, 401, "not valid")
    assert "Bearer" in bad.headers["www-authenticate"]


def test_no_credentials_on_a_private_route_is_401(http: httpx.Client) -> None:
    assert_problem(http.get("/api/me"), 401, "needs credentials")


def test_basic_auth_with_password_and_with_token(http: httpx.Client, context: Context) -> None:
    context.identities.create_user("ivy", password="ivy-password", scopes={Scope.READ})
    token = context.identities.create_token("ivy", {Scope.READ}).secret
    assert http.get("/api/me", auth=("ivy", "ivy-password")).json()["user"] == "ivy"
    assert http.get("/api/me", auth=("ivy", token)).json()["token_id"] is not None
    assert_problem(http.get("/api/me", auth=("ivy", "nope-nope")), 401, "wrong user name")
    assert_problem(http.get("/api/me", headers={"Authorization": "Basic !!notbase64"}), 401)


def test_missing_scope_is_403_naming_it(http: httpx.Client, context: Context) -> None:
    context.identities.create_user("jay", scopes={Scope.READ})
    token = context.identities.create_token("jay", {Scope.READ}).secret
    r = http.get("/api/users", headers={"Authorization": f"Bearer {token}"})
    assert_problem(r, 403, "'admin'")


def test_token_lifecycle_over_http(http: httpx.Client, admin_token: str) -> None:
    admin = {"Authorization": f"Bearer {admin_token}"}
    r = http.post("/api/users", json={"name": "kim", "scopes": ["read", "publish"]}, headers=admin)
    assert r.status_code == 201
    # An admin token may mint for itself; kim mints its own through a token of its own.
    r = http.post("/api/tokens", json={"scopes": ["read"], "expires": "1d"}, headers=admin)
    assert r.status_code == 201
    created = r.json()
    assert created["token"].startswith("strato_")
    assert created["expires_at"]
    mine = {"Authorization": f"Bearer {created['token']}"}
    assert http.get("/api/me", headers=mine).json()["scopes"] == ["read"]
    # A read token cannot mint a publish token.
    escalate = http.post("/api/tokens", json={"scopes": ["publish"]}, headers=mine)
    assert_problem(escalate, 403, "publish")
    listed = http.get("/api/tokens", headers=admin).json()
    assert created["id"] in {t["id"] for t in listed}
    assert all("token" not in t for t in listed)
    assert http.delete(f"/api/tokens/{created['id']}", headers=admin).json()["state"] == "revoked"
    assert_problem(http.get("/api/me", headers=mine), 401, "revoked")
    assert_problem(http.delete("/api/tokens/nosuch", headers=admin), 404, "nosuch")


def test_bad_expiry_is_400_naming_forms(http: httpx.Client, admin_token: str) -> None:
    r = http.post(
        "/api/tokens",
        json={"scopes": ["read"], "expires": "forever"},
        headers={"Authorization": f"Bearer {admin_token}"},
    )
    assert_problem(r, 400, "30d, 12h, 90m")


def _app_with_read_route(settings: Settings, context: Context) -> Any:
    app = create_app(settings, context=context)
    auth = Authenticator(context.identities, settings.auth)

    @app.get("/probe/read")
    def read(p: Principal = Depends(auth.require(Scope.READ))) -> dict[str, Any]:
        return {"user": p.user}

    @app.post("/probe/write")
    def write(p: Principal = Depends(auth.require(Scope.PUBLISH))) -> dict[str, Any]:
        return {"user": p.user}

    return app


@pytest.mark.parametrize("anonymous_read", [True, False])
def test_anonymous_read_is_a_setting_and_never_covers_writes(
    anonymous_read: bool,
    settings: Settings,
    context: Context,
    serve: Callable[[Any], str],
) -> None:
    settings = settings.model_copy(update={"auth": AuthSettings(anonymous_read=anonymous_read)})
    url = serve(_app_with_read_route(settings, context))
    with httpx.Client(base_url=url) as c:
        r = c.get("/probe/read")
        if anonymous_read:
            assert r.status_code == 200
            assert r.json() == {"user": None}
        else:
            assert_problem(r, 401, "'read'")
        assert_problem(c.post("/probe/write"), 401, "'publish'")


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_derived_token_never_outlives_its_parent(http: httpx.Client, context: Context) -> None:
    context.identities.create_user("nia", password="nia-password", scopes={Scope.READ})
    r = http.post(
        "/api/tokens", json={"scopes": ["read"], "expires": "1m"}, auth=("nia", "nia-password")
    )
    assert r.status_code == 201, r.text
    parent = r.json()
    assert parent["parent_id"] is None  # minted with the password: no parent token

    # Asking for more life than the parent has is refused, naming the parent's expiry.
    for longer in ("never", "1d", "30m"):
        r = http.post(
            "/api/tokens",
            json={"scopes": ["read"], "expires": longer},
            headers=_bearer(parent["token"]),
        )
        body = assert_problem(r, 400, parent["id"])
        assert parent["expires_at"][:19] in body["detail"]
    # Without an expiry, the derived token ends with its parent.
    r = http.post("/api/tokens", json={"scopes": ["read"]}, headers=_bearer(parent["token"]))
    assert r.status_code == 201, r.text
    child = r.json()
    assert child["expires_at"] == parent["expires_at"]
    assert child["parent_id"] == parent["id"]
    blank = {"scopes": ["read"], "expires": ""}
    r = http.post("/api/tokens", json=blank, headers=_bearer(child["token"]))
    assert r.json()["expires_at"] == parent["expires_at"]


def test_revoking_a_token_revokes_what_it_minted(http: httpx.Client, context: Context) -> None:
    context.identities.create_user(
        "otto", password="otto-password", scopes={Scope.READ, Scope.PUBLISH}
    )
    basic = ("otto", "otto-password")
    parent = http.post("/api/tokens", json={"scopes": ["read", "publish"]}, auth=basic).json()
    child = http.post(
        "/api/tokens", json={"scopes": ["read", "publish"]}, headers=_bearer(parent["token"])
    ).json()
    grandchild = http.post(
        "/api/tokens", json={"scopes": ["read"]}, headers=_bearer(child["token"])
    ).json()
    sibling = http.post("/api/tokens", json={"scopes": ["read"]}, auth=basic).json()
    # A token carries no scope its parent lacks.
    escalate = http.post(
        "/api/tokens", json={"scopes": ["publish"]}, headers=_bearer(grandchild["token"])
    )
    assert_problem(escalate, 403, "publish")

    r = http.delete(f"/api/tokens/{parent['id']}", auth=basic)
    assert r.json()["state"] == "revoked"
    for token in (parent, child, grandchild):
        assert_problem(http.get("/api/me", headers=_bearer(token["token"])), 401, "revoked")
    assert http.get("/api/me", headers=_bearer(sibling["token"])).status_code == 200
    states = {t["id"]: t["state"] for t in http.get("/api/tokens", auth=basic).json()}
    assert states == {
        parent["id"]: "revoked",
        child["id"]: "revoked",
        grandchild["id"]: "revoked",
        sibling["id"]: "active",
    }


def test_api_me_answers_while_the_sqlite_database_is_locked(
    http: httpx.Client, context: Context, settings: Settings
) -> None:
    context.identities.create_user("pia", password="pia-password", scopes={Scope.READ})
    fresh = [context.identities.create_token("pia", {Scope.READ}).secret for _ in range(2)]
    holder = sqlite3.connect(settings.data_dir / "strato.db", isolation_level=None, timeout=0)
    # Far below the database's busy timeout (30 s): a request that waits for the lock
    # to record last_used_at fails here instead of answering.
    quick = httpx.Timeout(5.0)
    try:
        holder.execute("BEGIN IMMEDIATE")  # another writer holds the write lock
        for kwargs in (
            {"headers": _bearer(fresh[0])},
            {"auth": ("pia", fresh[1])},
            {"auth": ("pia", "pia-password")},
        ):
            r = http.get("/api/me", timeout=quick, **kwargs)  # type: ignore[arg-type]
            assert r.status_code == 200, r.text
            assert r.json()["user"] == "pia"
    finally:
        holder.rollback()
        holder.close()
    # Once the lock is gone, use is recorded again.
    assert http.get("/api/me", headers=_bearer(fresh[0])).status_code == 200
    used = {t["last_used_at"] for t in http.get("/api/tokens", headers=_bearer(fresh[0])).json()}
    assert used - {None}


def test_last_use_is_written_at_most_once_a_minute(
    http: httpx.Client, context: Context, settings: Settings
) -> None:
    context.identities.create_user("quin", password="quin-password", scopes={Scope.READ})
    token = context.identities.create_token("quin", {Scope.READ}).secret
    watcher = sqlite3.connect(settings.data_dir / "strato.db", isolation_level=None)
    try:
        assert http.get("/api/me", headers=_bearer(token)).status_code == 200  # records use
        # data_version changes when another connection commits a change.
        before = watcher.execute("PRAGMA data_version").fetchone()[0]
        for _ in range(3):
            assert http.get("/api/me", headers=_bearer(token)).status_code == 200
            assert http.get("/api/me", auth=("quin", token)).status_code == 200
            assert http.get("/api/me", auth=("quin", "quin-password")).status_code == 200
        assert watcher.execute("PRAGMA data_version").fetchone()[0] == before
    finally:
        watcher.close()


def _client_from(url: str, address: str) -> httpx.Client:
    # Linux routes all of 127.0.0.0/8 to loopback: each address is another client.
    return httpx.Client(base_url=url, transport=httpx.HTTPTransport(local_address=address))


def test_wrong_password_bursts_answer_429_and_spare_other_users(
    settings: Settings, context: Context, serve: Callable[[Any], str]
) -> None:
    limits = AuthSettings(failures_per_user=3, failures_per_address=5, failure_window=60)
    settings = settings.model_copy(update={"auth": limits})
    url = serve(create_app(settings, context=context))
    context.identities.create_user("vic", password="vic-password", scopes={Scope.READ})
    context.identities.create_user("wes", password="wes-password", scopes={Scope.READ})

    with _client_from(url, "127.0.0.1") as attacker:
        for _ in range(3):
            assert_problem(attacker.get("/api/me", auth=("vic", "wrong-pass")), 401)
        r = attacker.get("/api/me", auth=("vic", "wrong-pass"))
        assert_problem(r, 429, "'vic'")
        assert "3 per 60 s" in r.json()["detail"]
        assert 0 < int(r.headers["retry-after"]) <= 60
        # Refused before the password is checked: the right one is refused as well.
        assert_problem(attacker.get("/api/me", auth=("vic", "vic-password")), 429)
    with _client_from(url, "127.0.0.2") as someone:
        # Another user signs in from another address as ever.
        assert someone.get("/api/me", auth=("wes", "wes-password")).json()["user"] == "wes"
        # Tokens are not password checks: they still work for the user under attack.
        token = context.identities.create_token("vic", {Scope.READ}).secret
        assert someone.get("/api/me", headers=_bearer(token)).status_code == 200

    # One address spraying user names is stopped by the per-address limit.
    with _client_from(url, "127.0.0.3") as sprayer:
        for i in range(5):
            assert_problem(sprayer.get("/api/me", auth=(f"u{i}", "wrong-pass")), 401)
        r = sprayer.get("/api/me", auth=("wes", "wes-password"))
        assert_problem(r, 429, "127.0.0.3")
        assert "5 per 60 s" in r.json()["detail"]
    with _client_from(url, "127.0.0.2") as someone:
        assert someone.get("/api/me", auth=("wes", "wes-password")).status_code == 200
